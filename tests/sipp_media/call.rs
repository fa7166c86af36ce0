//! One call through the gateway: the gateway started with its media anchored and recordings in
//! the test's directory, the carrier and the PBX streaming their tones, the SDP each received, the
//! call's CDR.

use super::audio::tone;
use super::*;

pub(super) fn free_local(ip: Ipv4Addr) -> SocketAddr {
    SocketAddr::new(ip.into(), harness::free_port(ip, false))
}

/// The audio part of an SDP body: the `c=` address, the `m=audio` port and formats, and the
/// `a=rtpmap` lines.
#[derive(Debug)]
pub(super) struct AudioSdp {
    pub(super) address: String,
    pub(super) port: u16,
    pub(super) formats: Vec<String>,
    pub(super) rtpmaps: Vec<String>,
}

pub(super) fn audio_sdp(message: &str) -> Option<AudioSdp> {
    let lines: Vec<&str> = message.lines().map(str::trim).collect();
    let address = lines
        .iter()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))?
        .to_string();
    let mut m = lines
        .iter()
        .find_map(|l| l.strip_prefix("m=audio "))?
        .split_whitespace();
    let port = m.next()?.parse().ok()?;
    if m.next()? != "RTP/AVP" {
        return None;
    }
    Some(AudioSdp {
        address,
        port,
        formats: m.map(str::to_string).collect(),
        rtpmaps: lines
            .iter()
            .filter_map(|l| l.strip_prefix("a=rtpmap:"))
            .map(str::to_string)
            .collect(),
    })
}

/// The gateway's relay engine (`[media] engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Engine {
    /// `TRUNKGUARD_TEST_MEDIA_ENGINE` when set (`io_uring` runs the suite on it), else `epoll`,
    /// the default.
    FromEnv,
    IoUring,
}

impl Engine {
    pub(super) fn name(self) -> String {
        match self {
            Engine::FromEnv => std::env::var("TRUNKGUARD_TEST_MEDIA_ENGINE")
                .ok()
                .filter(|e| !e.is_empty())
                .unwrap_or_else(|| "epoll".to_string()),
            Engine::IoUring => "io_uring".to_string(),
        }
    }
}

/// A call in progress: the gateway, the carrier (index 0) and the PBX (index 1).
pub(super) struct MediaCall {
    pub(super) scene: Scene,
    pub(super) codec: G711,
    pub(super) carrier: usize,
    pub(super) pbx: usize,
    /// The PBX's INVITE has no SDP: the offer comes in the 200, the answer in the ACK.
    pub(super) late: bool,
}

/// Starts the gateway (media anchored on its interface addresses, relayed by `engine`'s relay
/// threads, recordings in the test's directory), the carrier (answers after `ring_ms`) and the
/// PBX (hangs up `talk_ms` after the answer), both streaming their tone in `codec`; `late`: with
/// a late offer.
pub(super) fn start_call(
    codec: G711,
    ring_ms: u64,
    talk_ms: u64,
    late: bool,
    engine: Engine,
) -> MediaCall {
    let engine = engine.name();
    let mut scene = Scene::start_with(TrunkLimits::default(), |dir| {
        format!(
            "\n[media]\ninside_address = \"{INSIDE_IP}\"\noutside_address = \"{OUTSIDE_IP}\"\n\
             engine = \"{engine}\"\n\
             \n[recording]\ndir = \"{}\"\nrequired = true\n",
            dir.join("recordings").display()
        )
    });
    // RTPSTREAM caches its file when the scenario loads: it must be there first.
    for (name, file, hz) in [
        (PBX_SIPP, "pbx.g711", PBX_HZ),
        (CARRIER_SIPP, "carrier.g711", CARRIER_HZ),
    ] {
        let path = harness::sipp_dir(scene.path(), name).join(file);
        fs::write(&path, tone(hz, codec)).expect("write the test audio");
    }
    let pt = codec.payload_type().to_string();
    // RTP ports: SIPp binds its streams from -mp upwards (next free even offset); a port picked
    // free per instance keeps parallel tests apart.
    let media = |ip: Ipv4Addr| harness::free_port(ip, false).to_string();
    let codec_args = |ip: Ipv4Addr| {
        args(&[
            "-mi",
            &ip.to_string(),
            "-mp",
            &media(ip),
            "-rtp_payload",
            &pt,
            "-key",
            "codec_pt",
            &pt,
            "-key",
            "codec_name",
            codec.name(),
            "-m",
            "1",
            "-trace_msg",
        ])
    };
    let carrier_local = scene.addrs.carrier;
    let mut carrier_args = codec_args(CARRIER_IP);
    carrier_args.extend(args(&["-key", "ring_ms", &ring_ms.to_string()]));
    let carrier = scene.sipp(SippSpec {
        name: CARRIER_SIPP,
        scenario: Scenario::File(if late {
            "carrier_uas_media_late.xml"
        } else {
            "carrier_uas_media.xml"
        }),
        local: carrier_local,
        remote: None,
        args: carrier_args,
        timeout_secs: 30,
    });
    let inside = scene.addrs.inside;
    let mut pbx_args = codec_args(PBX_IP);
    pbx_args.extend(args(&[
        "-key",
        "caller",
        TRUNK_NUMBER,
        "-s",
        CALLEE,
        "-d",
        &talk_ms.to_string(),
    ]));
    let pbx = scene.sipp(SippSpec {
        name: PBX_SIPP,
        scenario: Scenario::File(if late {
            "pbx_uac_media_late.xml"
        } else {
            "pbx_uac_media.xml"
        }),
        local: free_local(PBX_IP),
        remote: Some(inside),
        args: pbx_args,
        timeout_secs: 30,
    });
    MediaCall {
        scene,
        codec,
        carrier,
        pbx,
        late,
    }
}

impl MediaCall {
    /// Both SIPp instances end by themselves with one successful call each, and the SDP each
    /// received offers/answers the codec under test on the gateway's media address.
    pub(super) fn expect_call_completed(&mut self) {
        let scene = &mut self.scene;
        scene.expect_exit_ok(self.pbx);
        scene.expect_exit_ok(self.carrier);
        for (i, role) in [(self.pbx, "PBX"), (self.carrier, "carrier")] {
            let stats = scene.ok(scene.sipps[i].stats());
            let ok = scene.ok(stats.get("SuccessfulCall"));
            let failed = scene.ok(stats.get("FailedCall"));
            scene.ensure(ok == 1 && failed == 0, || {
                format!("{role} SIPp: {ok} successful, {failed} failed calls; expected 1/0")
            });
        }

        let pt = self.codec.payload_type().to_string();
        let rtpmap = format!("{pt} {}/8000", self.codec.name());
        // The PBX got the carrier's answer in the 200 to its INVITE; the carrier got the
        // PBX's offer in the INVITE (late offer: the other way round, the carrier's offer in
        // the 200, the PBX's answer in the ACK). Both rewritten by the gateway to its own
        // media address.
        let pbx_msgs = scene.ok(scene.sipps[self.pbx].received_messages());
        let answer = pbx_msgs
            .iter()
            .find(|m| {
                m.starts_with("SIP/2.0 200") && m.lines().any(|l| l.trim().ends_with("1 INVITE"))
            })
            .cloned();
        let carrier_msgs = scene.ok(scene.sipps[self.carrier].received_messages());
        let late = self.late;
        let offer = carrier_msgs
            .iter()
            .find(|m| m.starts_with(if late { "ACK " } else { "INVITE " }))
            .cloned();
        for (what, msg, media_ip) in [
            ("answer the PBX received", answer, INSIDE_IP),
            ("offer the carrier received", offer, OUTSIDE_IP),
        ] {
            let Some(msg) = msg else {
                scene.fail(format!("no {what} in SIPp's message trace"))
            };
            let sdp = audio_sdp(&msg);
            scene.ensure(
                sdp.as_ref().is_some_and(|s| {
                    s.address == media_ip.to_string()
                        && s.port != 0
                        && s.formats == [pt.clone()]
                        && s.rtpmaps.contains(&rtpmap)
                }),
                || {
                    format!(
                        "the {what} should name only {rtpmap} on {media_ip}; found {sdp:?} in:\n{msg}"
                    )
                },
            );
        }
    }

    /// SIGTERM the gateway and read the one CDR, an answered outbound call with a recording.
    pub(super) fn the_cdr(&mut self) -> Cdr {
        let cdrs = self.scene.stop_and_read_cdrs();
        let scene = &self.scene;
        scene.ensure(cdrs.len() == 1, || {
            format!("expected one CDR, found {}: {cdrs:#?}", cdrs.len())
        });
        let cdr = cdrs.into_iter().next().expect("one CDR");
        scene.ensure(
            cdr.attempt.direction == Direction::Outbound
                && cdr.outcome.disposition == Disposition::Answered
                && cdr.outcome.final_status == 200
                && cdr.outcome.talk_ms > 0
                && cdr.recording.is_some(),
            || format!("expected an answered outbound call with a recording: {cdr:#?}"),
        );
        cdr
    }
}
