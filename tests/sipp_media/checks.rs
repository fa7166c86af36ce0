//! What a recorded call must show: per-leg media figures, a recording with each side on its
//! channel and as long as the call, and `trunkguard verify` telling a flipped byte.

use super::audio::analyse;
use super::*;

pub(super) fn leg<'a>(scene: &Scene, cdr: &'a Cdr, name: &str) -> &'a LegQuality {
    cdr.media
        .iter()
        .find(|q| q.leg == name)
        .unwrap_or_else(|| scene.fail(format!("no {name} leg in the CDR's media: {cdr:#?}")))
}

/// Per-leg figures: both peers sent, nothing was lost or stray on loopback, and everything
/// received on one leg was relayed to the other.
pub(super) fn check_media_figures(scene: &Scene, cdr: &Cdr) {
    let inside = leg(scene, cdr, "inside");
    let outside = leg(scene, cdr, "outside");
    scene.ensure(
        inside.packets_in > 0
            && outside.packets_in > 0
            && inside.lost == 0
            && outside.lost == 0
            && inside.stray == 0
            && outside.stray == 0
            && outside.packets_out == inside.packets_in
            && inside.packets_out == outside.packets_in,
        || {
            format!(
                "per-leg media: expected packets in on both legs, 0 lost, 0 stray, and every \
                 packet relayed; found\ninside: {inside:#?}\noutside: {outside:#?}"
            )
        },
    );
}

/// The recording: complete, evidence that verifies, two channels each with its own side's
/// audio, every received packet in it, as long as the talk time. Returns the WAV's path.
pub(super) fn check_recording(scene: &Scene, cdr: &Cdr) -> String {
    let rec = cdr.recording.as_ref().expect("checked by the_cdr");
    let inside = leg(scene, cdr, "inside");
    let outside = leg(scene, cdr, "outside");
    let Some(stored) = rec.path.clone() else {
        scene.fail(format!("the recording has no path: {rec:#?}"))
    };
    // Stored relative to the recordings folder (the test's `recordings`).
    scene.ensure(!std::path::Path::new(&stored).is_absolute(), || {
        format!("a stored path relative to the recordings folder: {stored}")
    });
    let path = scene
        .path()
        .join("recordings")
        .join(&stored)
        .display()
        .to_string();
    scene.ensure(
        rec.status == RecordingStatus::Complete && rec.overflowed_packets == 0,
        || format!("expected a complete recording without overflow: {rec:#?}"),
    );
    let bytes = fs::read(&path).unwrap_or_else(|e| scene.fail(format!("cannot read {path}: {e}")));
    let digest = format!("{:x}", Sha256::digest(&bytes));
    scene.ensure(rec.sha256.as_deref() == Some(digest.as_str()), || {
        format!(
            "the file's SHA-256 is {digest}, the CDR says {:?}",
            rec.sha256
        )
    });
    scene.ensure(rec.size_bytes == bytes.len() as i64, || {
        format!(
            "the file has {} bytes, the CDR says {}",
            bytes.len(),
            rec.size_bytes
        )
    });
    let mode = fs::metadata(&path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    scene.ensure(mode == 0o600, || {
        format!("the recording's mode is {mode:o}, expected 600")
    });

    let mut reader = hound::WavReader::open(&path)
        .unwrap_or_else(|e| scene.fail(format!("{path} is not a WAV hound can read: {e}")));
    let spec = reader.spec();
    scene.ensure(
        spec.channels == 2
            && spec.sample_rate == RATE as u32
            && spec.bits_per_sample == 16
            && spec.sample_format == hound::SampleFormat::Int,
        || format!("expected stereo 8 kHz 16-bit PCM, found {spec:?}"),
    );
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| scene.fail(format!("cannot read the samples of {path}: {e}")));
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let file_ms = left.len() as f64 * 1000.0 / RATE as f64;
    let agent = analyse(&left, PBX_HZ, CARRIER_HZ);
    let customer = analyse(&right, CARRIER_HZ, PBX_HZ);
    let figures = || {
        format!(
            "file {file_ms:.0} ms (CDR duration {} ms), talk {} ms; left (agent, {} packets in): \
             {agent:?}; right (customer, {} packets in): {customer:?}",
            rec.duration_ms, cdr.outcome.talk_ms, inside.packets_in, outside.packets_in
        )
    };

    // Each channel is its own side's tone, and not the other's.
    scene.ensure(
        agent.own > 100.0 * agent.other && agent.crosstalk_blocks == 0,
        || format!("the left channel should carry the PBX's {PBX_HZ} Hz and not the carrier's {CARRIER_HZ} Hz: {}", figures()),
    );
    scene.ensure(
        customer.own > 100.0 * customer.other && customer.crosstalk_blocks == 0,
        || format!("the right channel should carry the carrier's {CARRIER_HZ} Hz and not the PBX's {PBX_HZ} Hz: {}", figures()),
    );
    // Every packet the gateway received is in the file: N packets of 20 ms make a run of
    // N·20 ms of tone, which covers all but at most the two 100 ms blocks at its ends.
    for (name, report, q) in [("left", &agent, inside), ("right", &customer, outside)] {
        let expected = (q.packets_in * PACKET_MS / 100).saturating_sub(2);
        scene.ensure(report.tone_blocks as u64 >= expected, || {
            format!(
                "the {name} channel has {} blocks of 100 ms of the tone as sent; the {} packets received \
                 make at least {expected}: audio the gateway received is missing or altered. {}",
                report.tone_blocks,
                q.packets_in,
                figures()
            )
        });
    }
    // The file spans the call's talk time, and the CDR's duration is the file's.
    scene.ensure(
        (file_ms - cdr.outcome.talk_ms as f64).abs() <= 300.0,
        || {
            format!(
                "the file should be as long as the talk time (±300 ms): {}",
                figures()
            )
        },
    );
    scene.ensure((file_ms - rec.duration_ms as f64).abs() <= 1.0, || {
        format!("the CDR's duration should be the file's: {}", figures())
    });
    path
}

/// `trunkguard verify` by path and by call id: 0 for the file as recorded, 1 once one byte is
/// flipped, 0 again once the original bytes are back.
pub(super) fn check_verify(scene: &Scene, cdr: &Cdr, path: &str) {
    let expect = |target: &str, code: i32, when: &str| {
        let (got, out) = scene.ok(scene.gateway.verify(target));
        scene.ensure(got == Some(code), || {
            format!("`trunkguard verify {target}` {when}: exit {got:?}, expected {code}; it said:\n{out}")
        });
    };
    expect(path, 0, "on the file as recorded");
    expect(&cdr.attempt.id, 0, "by call id, on the file as recorded");

    let original = fs::read(path).expect("read the recording");
    let copy = scene.path().join("pristine.wav");
    fs::write(&copy, &original).expect("keep a copy");
    let mut tampered = original.clone();
    // One bit of one sample in the middle of the audio.
    let at = 44 + (tampered.len() - 44) / 2;
    tampered[at] ^= 0x01;
    fs::write(path, &tampered).expect("flip a byte of the recording");
    expect(path, 1, "after a byte of the file was flipped");
    expect(
        &cdr.attempt.id,
        1,
        "by call id, after a byte of the file was flipped",
    );

    fs::copy(&copy, path).expect("restore the recording");
    expect(path, 0, "once the original bytes are back");
}
