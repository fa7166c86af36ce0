//! The SRTP half of a call's offer/answer (SDES, RFC 4568), leg by leg.
//!
//! Each leg is plain RTP or SRTP on its own, as its trunk side allows (`MediaEncryption`):
//! - an offer from one leg's peer is answered in kind (SRTP to a usable `a=crypto`, plain to
//!   plain) — unless that leg is `none` (a best-effort `RTP/AVP` + `a=crypto` offer is answered
//!   plain; an `RTP/SAVP` one was refused before it got here);
//! - the other leg is offered SRTP when it is `required`, or `optional` and the offer was SRTP;
//!   plain otherwise. Our offer lists every suite the gateway serves, each with its own key;
//! - the gateway's keys are its own: random, one per leg and suite, made when first sent and
//!   kept for the call (a repeated answer or a re-offer names the same key, so the relay's
//!   contexts go on); a peer's `a=crypto` never crosses to the other leg.
//!
//! The keys in force (`keys()`) are what the relay decrypts and encrypts with: a leg's inbound
//! key is the one its peer announced, its outbound key the one we announced to it.

use std::sync::Arc;

use super::sdp::crypto::{plain_profile, secure_profile, CryptoLine};
use super::sdp::{MediaInfo, OfferedSecurity, SessionDescription};
use super::srtp::{LegKeys, MasterKey, Suite};
use super::Leg;
use crate::config::MediaEncryption;

/// Why an answer cannot be taken: the call cannot go on with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// A plain answer from a leg whose encryption is `required`.
    #[error("plain RTP answer on a leg whose media_encryption is \"required\"")]
    SrtpRequired,
    /// An `a=crypto` answer naming none of our offered keys, or one that cannot be used.
    #[error("the answer's a=crypto cannot be used: {0}")]
    BadCrypto(String),
}

/// An offer waiting for (or already given) its answer.
#[derive(Debug, Clone)]
struct Pending {
    /// The leg whose peer offered.
    from: Leg,
    /// Its usable `a=crypto` line, when it offered SRTP the gateway takes.
    offered: Option<CryptoLine>,
    /// The profile it offered: the answer to it names the same.
    profile: String,
    /// What we offered the other leg: `(tag, key)` per suite; empty for plain RTP.
    to_other: Vec<(u32, Arc<MasterKey>)>,
    /// The offer asked for SRTP that cannot be taken and was not refused (a late offer in a
    /// 2xx is not checked at admission): whatever its peer sends is encrypted with keys we do
    /// not have, so none of it may be relayed or recorded as clear.
    unusable: bool,
}

/// One call's SDES state. See the module docs.
#[derive(Debug)]
pub struct Sdes {
    modes: [MediaEncryption; 2],
    /// Our key per leg and suite (`Suite::ALL` order).
    ours: [[Option<Arc<MasterKey>>; 3]; 2],
    pending: Option<Pending>,
    keys: [LegKeys; 2],
}

impl Sdes {
    /// `modes`: the inside (PBX) and outside (carrier) legs' `media_encryption`.
    pub fn new(modes: [MediaEncryption; 2]) -> Sdes {
        Sdes {
            modes,
            ours: Default::default(),
            pending: None,
            keys: Default::default(),
        }
    }

    pub fn mode(&self, leg: Leg) -> MediaEncryption {
        self.modes[leg.index()]
    }

    /// The keys in force, per leg (`Leg::index`).
    pub fn keys(&self) -> &[LegKeys; 2] {
        &self.keys
    }

    /// Whether a body from `from`'s peer that may be an answer is one: an offer from the other
    /// leg is outstanding (or was answered and may be answered again, as a 200 repeats a 183's
    /// answer).
    pub fn answers_pending(&self, from: Leg) -> bool {
        self.pending
            .as_ref()
            .is_some_and(|p| p.from == from.other())
    }

    fn our_key(&mut self, leg: Leg, suite: Suite) -> Arc<MasterKey> {
        let slot = Suite::ALL.iter().position(|s| *s == suite).unwrap_or(0);
        Arc::clone(
            self.ours[leg.index()][slot].get_or_insert_with(|| Arc::new(MasterKey::random(suite))),
        )
    }

    /// An offer from `from`'s peer (`sdp`, its anchored stream `audio`), rewritten as `out`
    /// for the other leg: `out` gets our SRTP lines, or none.
    pub fn offer(
        &mut self,
        from: Leg,
        sdp: &SessionDescription,
        audio: Option<&MediaInfo>,
        out: &mut SessionDescription,
    ) {
        let Some(audio) = audio else {
            out.set_crypto(None, None, &[]);
            self.pending = None;
            return;
        };
        // Checked at admission (`check_offer`), except a late offer in a 2xx.
        let (offered, unusable) = match sdp.offered_security(audio) {
            Ok(OfferedSecurity::Sdes { line, .. }) if self.mode(from) != MediaEncryption::None => {
                (Some(line), false)
            }
            Ok(OfferedSecurity::Sdes { required, .. }) => (None, required),
            Ok(OfferedSecurity::Plain) => (None, false),
            Err(_) => (None, true),
        };
        if unusable {
            tracing::warn!(
                leg = from.as_str(),
                "SRTP offer that cannot be taken: that leg's media will be dropped"
            );
        }
        let to = from.other();
        let secure = match self.mode(to) {
            MediaEncryption::None => false,
            MediaEncryption::Required => true,
            MediaEncryption::Optional => offered.is_some(),
        };
        let mut to_other = Vec::new();
        if secure {
            // The offerer's suite first: the answerer most likely takes the first it knows.
            let mut suites = Suite::ALL.to_vec();
            if let Some(line) = &offered {
                suites.retain(|s| *s != line.suite);
                suites.insert(0, line.suite);
            }
            for (i, suite) in suites.into_iter().enumerate() {
                to_other.push((i as u32 + 1, self.our_key(to, suite)));
            }
            let lines: Vec<(u32, &MasterKey)> = to_other.iter().map(|(t, k)| (*t, &**k)).collect();
            out.set_crypto(
                Some(audio.index),
                Some(&secure_profile(&audio.protocol)),
                &lines,
            );
        } else {
            out.set_crypto(
                Some(audio.index),
                Some(&plain_profile(&audio.protocol)),
                &[],
            );
        }
        self.pending = Some(Pending {
            from,
            offered,
            profile: audio.protocol.clone(),
            to_other,
            unusable,
        });
    }

    /// The answer from `from`'s peer to the pending offer (`answers_pending(from)`), rewritten
    /// as `out` for the offerer. On error nothing changes and the answer must not be used.
    pub fn answer(
        &mut self,
        from: Leg,
        sdp: &SessionDescription,
        audio: Option<&MediaInfo>,
        out: &mut SessionDescription,
    ) -> Result<(), AnswerError> {
        let Some(pending) = self.pending.clone().filter(|p| p.from == from.other()) else {
            out.set_crypto(None, None, &[]);
            return Ok(());
        };
        let offerer = pending.from;
        let Some(audio) = audio else {
            // The stream was declined: no media either way.
            out.set_crypto(None, None, &[]);
            return Ok(());
        };
        let answerer_keys = if pending.to_other.is_empty() {
            LegKeys::default()
        } else {
            match sdp.answered_crypto(audio.index) {
                Some(Ok(line)) => {
                    let ours = pending
                        .to_other
                        .iter()
                        .find(|(tag, key)| *tag == line.tag && key.suite() == line.suite)
                        .map(|(_, key)| Arc::clone(key))
                        .ok_or_else(|| {
                            AnswerError::BadCrypto(format!(
                                "tag {} {} was not offered",
                                line.tag,
                                line.suite.name()
                            ))
                        })?;
                    LegKeys {
                        inbound: Some(self.kept(from, true, line.key)),
                        outbound: Some(ours),
                    }
                }
                Some(Err(e)) => return Err(AnswerError::BadCrypto(e.to_string())),
                None if self.mode(from) == MediaEncryption::Required => {
                    return Err(AnswerError::SrtpRequired)
                }
                // Plain to our SAVP offer (only made because the offerer was SRTP): carried
                // plain on that leg, which `optional` allows.
                None => LegKeys::default(),
            }
        };
        let offerer_keys = match &pending.offered {
            Some(line) => {
                let ours = self.our_key(offerer, line.suite);
                out.set_crypto(
                    Some(audio.index),
                    Some(&pending.profile),
                    &[(line.tag, &ours)],
                );
                LegKeys {
                    inbound: Some(self.kept(offerer, true, line.key.clone())),
                    outbound: Some(ours),
                }
            }
            None => {
                out.set_crypto(Some(audio.index), Some(&pending.profile), &[]);
                if pending.unusable {
                    // A key nobody holds: every packet fails authentication and is dropped.
                    LegKeys {
                        inbound: Some(self.our_key(offerer, Suite::AesCm128HmacSha1_80)),
                        outbound: None,
                    }
                } else {
                    LegKeys::default()
                }
            }
        };
        self.keys[from.index()] = answerer_keys;
        self.keys[offerer.index()] = offerer_keys;
        Ok(())
    }

    /// The leg's current key when it is the same (a repeated answer), else the new one.
    fn kept(&self, leg: Leg, inbound: bool, key: MasterKey) -> Arc<MasterKey> {
        let current = &self.keys[leg.index()];
        let current = if inbound {
            &current.inbound
        } else {
            &current.outbound
        };
        match current {
            Some(k) if **k == key => Arc::clone(k),
            _ => Arc::new(key),
        }
    }
}
