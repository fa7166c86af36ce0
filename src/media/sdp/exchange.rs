//! Offers and answers crossing an established call (RFC 3264): which one a body is, and whether
//! an answer (or an offer that comes in a 2xx, late offer) is one the gateway can anchor. An
//! initial offer is checked at admission (`check_offer`); what the far side sends back is
//! checked here, so that a body the gateway cannot carry is never passed on, with or without
//! the peer's addresses in it. Also the name the CDR gives a stream the gateway declines.

use super::{parse, MLine, SdpError, SessionDescription};

/// What an SDP body is in the exchange it belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// An offer: an INVITE's or UPDATE's body, or a 2xx's to an INVITE that had none.
    Offer,
    /// An answer: a 18x/2xx body to an offer, or an ACK's (late offer).
    Answer,
}

/// Why a body from the far side cannot be anchored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnusableSdp {
    #[error(transparent)]
    Unparseable(#[from] SdpError),
    /// RFC 3264 §6: an answer has exactly as many m= lines as the offer, matched by position;
    /// with another count no stream of it can be told apart from the others.
    #[error("the answer has {answered} media lines for the {offered} of the offer")]
    MediaCount { offered: usize, answered: usize },
}

/// Parse a body that crosses the call. `offered`: for an answer, the number of m= lines of the
/// offer it answers, when the gateway knows it.
pub fn check_body(
    body: &[u8],
    exchange: Exchange,
    offered: Option<usize>,
) -> Result<SessionDescription, UnusableSdp> {
    let parsed = parse(body)?;
    if exchange == Exchange::Answer {
        if let Some(offered) = offered {
            let answered = parsed.media_count();
            if answered != offered {
                return Err(UnusableSdp::MediaCount { offered, answered });
            }
        }
    }
    Ok(parsed)
}

/// The CDR's name for the stream at `index` that the gateway declined (port 0 in its rewrite):
/// its media type (`video`, `audio` for an extra audio stream…), and for `image` its format
/// too (`image/t38`), lowercase. Bounded: a peer's made-up media type is cut at 32 bytes.
pub fn declined_stream(sdp: &SessionDescription, index: usize) -> Option<String> {
    let m = MLine::parse(&sdp.media.get(index)?.first()?.value)?;
    let mut name: String = m
        .media
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(32)
        .collect::<String>()
        .to_ascii_lowercase();
    if name == "image" {
        if let Some(format) = m.formats.first() {
            name.push('/');
            name.extend(
                format
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .take(32)
                    .map(|c| c.to_ascii_lowercase()),
            );
        }
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUDIO: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
                         m=audio 4000 RTP/AVP 0\r\n";

    #[test]
    fn an_answer_matching_the_offer_passes() {
        assert!(check_body(AUDIO.as_bytes(), Exchange::Answer, Some(1)).is_ok());
        assert!(check_body(AUDIO.as_bytes(), Exchange::Answer, None).is_ok());
    }

    #[test]
    fn an_answer_with_another_media_count_is_unusable() {
        let two = format!("{AUDIO}m=video 0 RTP/AVP 96\r\n");
        assert_eq!(
            check_body(two.as_bytes(), Exchange::Answer, Some(1)).err(),
            Some(UnusableSdp::MediaCount {
                offered: 1,
                answered: 2
            })
        );
        // An offer is not matched against anything.
        assert!(check_body(two.as_bytes(), Exchange::Offer, Some(1)).is_ok());
    }

    #[test]
    fn declined_streams_are_named_by_media_type_and_t38_by_format() {
        let offer = format!(
            "{AUDIO}m=video 5000 RTP/AVP 96\r\nm=image 6000 udptl T38\r\nm=audio 7000 RTP/AVP 8\r\n"
        );
        let sdp = parse(offer.as_bytes()).unwrap();
        let names: Vec<_> = (1..4).filter_map(|i| declined_stream(&sdp, i)).collect();
        assert_eq!(names, ["video", "image/t38", "audio"]);
        assert_eq!(declined_stream(&sdp, 9), None);
    }

    #[test]
    fn garbage_and_65_media_lines_are_unusable() {
        let many = format!("{AUDIO}{}", "m=audio 0 RTP/AVP 0\r\n".repeat(64));
        assert!(matches!(
            check_body(many.as_bytes(), Exchange::Answer, None),
            Err(UnusableSdp::Unparseable(SdpError::TooManyMedia))
        ));
        assert!(matches!(
            check_body(b"garbage\r\n", Exchange::Answer, None),
            Err(UnusableSdp::Unparseable(_))
        ));
    }
}
