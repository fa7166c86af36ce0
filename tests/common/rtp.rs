//! RTP for tests: SDP naming a real socket, PCMU packets (silence or a tone), and a Goertzel
//! filter to tell which tone a channel carries.

use std::net::SocketAddr;

use tokio::net::UdpSocket;

use super::{token, Call, Dialog, Harness, InviteSpec, CALLEE, CALLER, CARRIER_IP, PBX_IP};

/// SDP naming a real RTP socket.
pub fn sdp_at(addr: SocketAddr) -> String {
    format!(
        "v=0\r\no=ua 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=sendrecv\r\n",
        ip = addr.ip(),
        port = addr.port()
    )
}

/// Where the SDP a UA received tells it to send RTP.
pub fn rtp_target(sdp: &str) -> SocketAddr {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .expect("c= line");
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|r| r.split(' ').next())
        .expect("m= line");
    format!("{}:{}", ip.trim(), port).parse().expect("address")
}

/// A 20 ms PCMU packet.
pub fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend(std::iter::repeat_n(0xff, 160));
    p
}

/// 20 ms of a tone as PCMU, for packet `seq`.
pub fn tone_packet(seq: u16, ssrc: u32, hz: f64) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for i in 0..160u32 {
        let t = f64::from(u32::from(seq) * 160 + i) / 8000.0;
        let s = (8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16;
        p.push(trunkguard::recording::g711::encode_ulaw(s));
    }
    p
}

/// Energy of `samples` at `hz` (Goertzel), normalized by length.
pub fn power_at(samples: &[i16], hz: f64, rate: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * hz / rate).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    (s1 * s1 + s2 * s2 - k * s1 * s2) / (samples.len() as f64).powi(2)
}

/// An answered outbound call whose two peers have RTP sockets.
pub struct MediaCall {
    pub call: Call,
    pub pbx_rtp: UdpSocket,
    pub carrier_rtp: UdpSocket,
    /// Where each UA was told to send.
    pub pbx_to: SocketAddr,
    pub carrier_to: SocketAddr,
}

/// PBX calls CALLER → CALLEE, the carrier answers; both sides' RTP sockets bound.
pub async fn establish_with_media(h: &mut Harness) -> MediaCall {
    let pbx_rtp = UdpSocket::bind(format!("{PBX_IP}:0")).await.expect("bind");
    let carrier_rtp = UdpSocket::bind(format!("{CARRIER_IP}:0"))
        .await
        .expect("bind");
    let mut spec = InviteSpec::new(CALLER, CALLEE);
    spec.sdp = Some(sdp_at(pbx_rtp.local_addr().expect("addr")));
    let invite = h.pbx.invite(h.inside(), &spec).await;
    h.pbx.expect_response(100).await;
    let c_invite = h.carrier_gets_invite().await;
    let carrier_to = rtp_target(&c_invite.body);
    let tag = token("ct");
    let answer = sdp_at(carrier_rtp.local_addr().expect("addr"));
    h.carrier
        .reply_with(&c_invite, 200, Some(&tag), &[], Some(&answer))
        .await;
    let ok = h.pbx.expect_response(200).await;
    let pbx_to = rtp_target(&ok.body);
    let pbx = Dialog::uac(&invite, &ok);
    h.pbx.ack(&pbx, invite.cseq).await;
    h.carrier.expect_request("ACK").await;
    MediaCall {
        call: Call {
            invite,
            c_invite: c_invite.clone(),
            pbx,
            carrier: Dialog::uas(&c_invite, &tag),
        },
        pbx_rtp,
        carrier_rtp,
        pbx_to,
        carrier_to,
    }
}
