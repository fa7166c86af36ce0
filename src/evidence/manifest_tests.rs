use super::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub(crate) fn body() -> ManifestBody {
    ManifestBody {
        in_progress: Vec::new(),
        format: String::new(),
        day: "2026-12-05".into(),
        is_final: true,
        covers_from: "2026-12-05T00:00:00.000Z".into(),
        covers_to: "2026-12-06T00:00:00.000Z".into(),
        sealed_at: "2026-12-06T00:05:00.000Z".into(),
        gateway_version: "0.1.0".into(),
        prev_manifest_sha256: crate::store::chain::GENESIS.into(),
        prev_day: None,
        chains: vec![ChainHead {
            log: "audit_log".into(),
            head_id: Some(7),
            head_sha256: "ab".repeat(32),
        }],
        counts: Counts::default(),
        problems: vec![],
        entries: vec![
            Entry::Cdr {
                id: "C1".into(),
                invite_at: "2026-12-05T10:00:00.000Z".into(),
                sha256: "11".repeat(32),
            },
            Entry::Recording {
                call_id: "C1".into(),
                status: "complete".into(),
                wav_sha256: Some("22".repeat(32)),
                pcap_sha256: None,
                purged_at: None,
                pauses: Vec::new(),
            },
            Entry::Hold {
                hold_id: 3,
                call_id: "C1".into(),
                event: "placed".into(),
                at: "2026-12-05T11:00:00.000Z".into(),
                by: "officer".into(),
                reason: Some("court".into()),
            },
        ],
        merkle_root: String::new(),
        key_fingerprint: String::new(),
        root_signature: String::new(),
    }
}

#[test]
fn a_signed_manifest_checks_with_its_key_even_after_a_trip_through_a_file() {
    let k = key(1);
    let m = sign(body(), &k);
    assert_eq!(m.body.format, FORMAT);
    assert_eq!(m.body.counts.leaves, 3);
    assert_eq!(m.body.counts.cdrs, 1);
    assert_eq!(m.manifest_sha256, m.body.sha256());
    assert_eq!(check(&m, &k.verifying_key()), vec![]);
    let text = serde_json::to_string_pretty(&m).unwrap();
    assert!(text.contains("\"final\": true"), "{text}");
    let back = parse(&text).unwrap();
    assert_eq!(back, m);
    assert_eq!(check(&back, &k.verifying_key()), vec![]);
    assert_eq!(
        key_of_fingerprint(&m.body.key_fingerprint),
        Some(k.verifying_key())
    );
}

#[test]
fn an_edited_entry_another_key_or_a_forged_root_is_found() {
    let k = key(1);
    let m = sign(body(), &k);

    let mut edited = m.clone();
    if let Entry::Cdr { sha256, .. } = &mut edited.body.entries[0] {
        *sha256 = "33".repeat(32);
    }
    let found = check(&edited, &k.verifying_key());
    assert!(found.contains(&ManifestFinding::BadSignature), "{found:?}");
    assert!(
        found
            .iter()
            .any(|f| matches!(f, ManifestFinding::BodyAltered { .. })),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|f| matches!(f, ManifestFinding::MerkleRootMismatch { .. })),
        "{found:?}"
    );

    let other = key(2);
    let found = check(&m, &other.verifying_key());
    assert!(
        matches!(found[0], ManifestFinding::KeyMismatch { .. }),
        "{found:?}"
    );
    assert!(found.contains(&ManifestFinding::BadSignature));

    // Re-signed by someone else's key with the fingerprint left: both signatures fail.
    let mut forged = sign(body(), &other);
    forged.body.key_fingerprint = m.body.key_fingerprint.clone();
    let found = check(&forged, &k.verifying_key());
    assert!(found.contains(&ManifestFinding::BadSignature), "{found:?}");
    assert!(
        found.contains(&ManifestFinding::BadRootSignature),
        "{found:?}"
    );

    let mut miscounted = m.clone();
    miscounted.body.counts.holds = 0;
    assert!(check(&miscounted, &k.verifying_key()).contains(&ManifestFinding::CountsMismatch));
}
