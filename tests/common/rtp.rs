//! RTP for tests: SDP naming a real socket, PCMU packets (silence or a tone), and a Goertzel
//! filter to tell which tone a channel carries.

use std::net::SocketAddr;

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
