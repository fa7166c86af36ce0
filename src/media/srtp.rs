//! SRTP and SRTCP (RFC 3711) on a leg whose keys were exchanged in SDP (SDES, RFC 4568).
//!
//! The gateway terminates SRTP per leg: what a leg's peer sends is decrypted (and its
//! authentication checked) with the key that peer announced, and what is relayed to it is
//! encrypted with the key the gateway announced to it (fresh random keys per leg, never the other
//! peer's). The cipher work is `rtc-srtp`'s (pure Rust, AES and HMAC from ring); this module holds
//! the suites the gateway serves, the master keys (never printed) and a context per direction
//! and socket as the relay's pumps keep it.
//!
//! Cost: a packet through a context costs one buffer for its output (the crate's API returns
//! a new `BytesMut`); the plain-RTP path does not come here and allocates nothing.

use std::sync::Arc;

use base64::Engine as _;
use bytes::BytesMut;
use rtc_srtp::context::Context;
use rtc_srtp::crypto::providers::RingCrypto;
use rtc_srtp::option::{srtcp_replay_protection, srtp_replay_protection};
use rtc_srtp::protection_profile::ProtectionProfile;
use zeroize::Zeroize;

/// Replay windows (RFC 3711 §3.3.2 asks for at least 64).
const REPLAY_WINDOW: usize = 128;
/// SSRCs one context will try before it refuses packets of further unknown SSRCs: the crate
/// keeps a state per SSRC it is shown (before the authentication check), so a flood of forged
/// SSRCs from the latched address must not grow it without bound.
const MAX_SSRCS: usize = 16;
/// Longest master key + salt of a suite served (16 + 14).
const MAX_KEY_SALT: usize = 30;

/// An SDES crypto suite the gateway serves (RFC 4568 §6.2, RFC 7714 §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
    AeadAes128Gcm,
}

impl Suite {
    /// The suites, in the order the gateway offers them (the most widely supported first).
    pub const ALL: [Suite; 3] = [
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::AeadAes128Gcm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
        }
    }

    /// A suite by its SDP name (case-insensitive); `None` for one the gateway cannot serve.
    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }

    fn profile(self) -> ProtectionProfile {
        match self {
            Suite::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Suite::AesCm128HmacSha1_32 => ProtectionProfile::Aes128CmHmacSha1_32,
            Suite::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        }
    }

    pub fn key_len(self) -> usize {
        16
    }

    pub fn salt_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 | Suite::AesCm128HmacSha1_32 => 14,
            Suite::AeadAes128Gcm => 12,
        }
    }

    /// Bytes of the `inline:` key material: master key then master salt.
    pub fn key_salt_len(self) -> usize {
        self.key_len() + self.salt_len()
    }
}

/// A master key and salt for one suite. Never printed (`Debug` shows the suite only) and wiped
/// when dropped.
#[derive(Clone)]
pub struct MasterKey {
    suite: Suite,
    bytes: [u8; MAX_KEY_SALT],
}

impl MasterKey {
    /// Fresh random key material from the operating system's generator.
    pub fn random(suite: Suite) -> MasterKey {
        let mut bytes = [0u8; MAX_KEY_SALT];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes[..suite.key_salt_len()]);
        MasterKey { suite, bytes }
    }

    /// From decoded `inline:` material; `None` when its length is not the suite's.
    pub fn from_bytes(suite: Suite, material: &[u8]) -> Option<MasterKey> {
        if material.len() != suite.key_salt_len() {
            return None;
        }
        let mut bytes = [0u8; MAX_KEY_SALT];
        bytes[..material.len()].copy_from_slice(material);
        Some(MasterKey { suite, bytes })
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    fn material(&self) -> &[u8] {
        &self.bytes[..self.suite.key_salt_len()]
    }

    /// The `inline:` value (base64 of key and salt) for our own a=crypto line.
    pub fn inline(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.material())
    }
}

impl PartialEq for MasterKey {
    fn eq(&self, other: &MasterKey) -> bool {
        self.suite == other.suite && self.material() == other.material()
    }
}

impl Eq for MasterKey {}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({}, <redacted>)", self.suite.name())
    }
}

/// The keys of one leg: what its peer encrypts with (we decrypt) and what we encrypt with
/// toward it. `None`: plain RTP that way.
#[derive(Debug, Clone, Default)]
pub struct LegKeys {
    pub inbound: Option<Arc<MasterKey>>,
    pub outbound: Option<Arc<MasterKey>>,
}

impl PartialEq for LegKeys {
    fn eq(&self, other: &LegKeys) -> bool {
        fn same(a: &Option<Arc<MasterKey>>, b: &Option<Arc<MasterKey>>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                (None, None) => true,
                _ => false,
            }
        }
        same(&self.inbound, &other.inbound) && same(&self.outbound, &other.outbound)
    }
}

impl LegKeys {
    pub fn is_plain(&self) -> bool {
        self.inbound.is_none() && self.outbound.is_none()
    }
}

/// Why a packet did not go through a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SrtpFailure {
    /// Failed authentication, a replay, or not SRTP/SRTCP at all: dropped.
    Rejected,
    /// An SSRC beyond `MAX_SSRCS` for this key: dropped without trying.
    TooManySsrcs,
}

/// One direction's SRTP state (one socket of one leg): decrypting what the leg's peer sends,
/// or encrypting what is relayed to it.
pub(crate) struct SrtpContext {
    key: Arc<MasterKey>,
    ctx: Context,
    ssrcs: [u32; MAX_SSRCS],
    known: usize,
}

impl SrtpContext {
    /// A context for `key`; `None` when the crate refuses it (it does not for the suites here).
    pub(crate) fn new(key: &Arc<MasterKey>) -> Option<SrtpContext> {
        let material = key.material();
        let (master_key, salt) = material.split_at(key.suite.key_len());
        let ctx = Context::new(
            master_key,
            salt,
            key.suite.profile(),
            Some(srtp_replay_protection(REPLAY_WINDOW)),
            Some(srtcp_replay_protection(REPLAY_WINDOW)),
            &RingCrypto,
        )
        .ok()?;
        Some(SrtpContext {
            key: Arc::clone(key),
            ctx,
            ssrcs: [0; MAX_SSRCS],
            known: 0,
        })
    }

    /// Whether this context was built from `key`.
    pub(crate) fn keyed_with(&self, key: &Arc<MasterKey>) -> bool {
        Arc::ptr_eq(&self.key, key) || *self.key == **key
    }

    /// Admit an SSRC (by the RTP header or the RTCP sender's SSRC) into the context's bounded
    /// set.
    fn admit(&mut self, ssrc: Option<u32>) -> Result<(), SrtpFailure> {
        let ssrc = ssrc.ok_or(SrtpFailure::Rejected)?;
        if self.ssrcs[..self.known].contains(&ssrc) {
            return Ok(());
        }
        if self.known == MAX_SSRCS {
            return Err(SrtpFailure::TooManySsrcs);
        }
        self.ssrcs[self.known] = ssrc;
        self.known += 1;
        Ok(())
    }

    pub(crate) fn decrypt(&mut self, data: &[u8], rtcp: bool) -> Result<BytesMut, SrtpFailure> {
        if rtcp {
            self.admit(ssrc_at(data, 4))?;
            self.ctx
                .decrypt_rtcp(data)
                .map_err(|_| SrtpFailure::Rejected)
        } else {
            self.admit(ssrc_at(data, 8))?;
            self.ctx
                .decrypt_rtp(data)
                .map_err(|_| SrtpFailure::Rejected)
        }
    }

    pub(crate) fn encrypt(&mut self, data: &[u8], rtcp: bool) -> Result<BytesMut, SrtpFailure> {
        if rtcp {
            self.admit(ssrc_at(data, 4))?;
            self.ctx
                .encrypt_rtcp(data)
                .map_err(|_| SrtpFailure::Rejected)
        } else {
            self.admit(ssrc_at(data, 8))?;
            self.ctx
                .encrypt_rtp(data)
                .map_err(|_| SrtpFailure::Rejected)
        }
    }
}

fn ssrc_at(data: &[u8], at: usize) -> Option<u32> {
    let b = data.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::tests::packet;

    fn key(suite: Suite) -> Arc<MasterKey> {
        Arc::new(MasterKey::random(suite))
    }

    #[test]
    fn round_trip_every_suite_rtp_and_rtcp() {
        for suite in Suite::ALL {
            let k = key(suite);
            let mut tx = SrtpContext::new(&k).unwrap();
            let mut rx = SrtpContext::new(&k).unwrap();
            for seq in 0..300u16 {
                let p = packet(
                    0,
                    seq.wrapping_add(65_400),
                    160 * u32::from(seq),
                    9,
                    &[7; 160],
                );
                let sealed = tx.encrypt(&p, false).unwrap();
                assert_ne!(&sealed[12..172], &p[12..], "{suite:?}: payload left clear");
                assert_eq!(&rx.decrypt(&sealed, false).unwrap()[..], &p[..]);
                // A replay is refused.
                assert_eq!(rx.decrypt(&sealed, false), Err(SrtpFailure::Rejected));
            }
            let sr = [
                0x80, 200, 0, 6, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0,
                0, 3, 0, 0, 0, 4,
            ];
            let sealed = tx.encrypt(&sr, true).unwrap();
            assert_eq!(&rx.decrypt(&sealed, true).unwrap()[..], &sr[..]);
        }
    }

    #[test]
    fn wrong_key_or_tampering_is_rejected() {
        let k = key(Suite::AesCm128HmacSha1_80);
        let mut tx = SrtpContext::new(&k).unwrap();
        let mut other = SrtpContext::new(&key(Suite::AesCm128HmacSha1_80)).unwrap();
        let p = packet(0, 1, 160, 9, &[7; 160]);
        let sealed = tx.encrypt(&p, false).unwrap();
        assert_eq!(other.decrypt(&sealed, false), Err(SrtpFailure::Rejected));
        let mut rx = SrtpContext::new(&k).unwrap();
        let mut bad = sealed.to_vec();
        bad[40] ^= 1;
        assert_eq!(rx.decrypt(&bad, false), Err(SrtpFailure::Rejected));
        // Plain RTP is not SRTP.
        assert_eq!(rx.decrypt(&p, false), Err(SrtpFailure::Rejected));
        assert!(rx.decrypt(&[], false).is_err() && rx.decrypt(&[0x80; 9], true).is_err());
    }

    #[test]
    fn ssrcs_per_context_are_bounded() {
        let k = key(Suite::AesCm128HmacSha1_32);
        let mut rx = SrtpContext::new(&k).unwrap();
        for ssrc in 0..MAX_SSRCS as u32 {
            let _ = rx.decrypt(&packet(0, 1, 1, ssrc, &[0; 20]), false);
        }
        assert_eq!(
            rx.decrypt(&packet(0, 1, 1, 999, &[0; 20]), false),
            Err(SrtpFailure::TooManySsrcs)
        );
    }

    #[test]
    fn keys_never_print() {
        let k = MasterKey::random(Suite::AesCm128HmacSha1_80);
        let shown = format!(
            "{k:?} {:?}",
            LegKeys {
                inbound: Some(Arc::new(k.clone())),
                outbound: None
            }
        );
        assert!(!shown.contains(&k.inline()), "{shown}");
        assert!(shown.contains("AES_CM_128_HMAC_SHA1_80"));
        assert_eq!(k.inline().len(), 40);
        let back = base64::engine::general_purpose::STANDARD
            .decode(k.inline())
            .unwrap();
        assert_eq!(
            MasterKey::from_bytes(Suite::AesCm128HmacSha1_80, &back),
            Some(k)
        );
        assert!(MasterKey::from_bytes(Suite::AeadAes128Gcm, &back).is_none());
    }
}
