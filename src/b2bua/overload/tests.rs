use super::*;

#[test]
fn late_only_past_the_limit_and_never_when_off() {
    let o = Overload::new(Some(Duration::from_millis(200)), None);
    assert!(!o.observe(Side::Inside, Duration::from_millis(200)));
    assert!(o.observe(Side::Inside, Duration::from_millis(201)));
    assert!(!o.observe(Side::Outside, Duration::ZERO));
    let off = Overload::new(Some(Duration::ZERO), Some(Duration::from_millis(50)));
    assert!(!off.observe(Side::Inside, Duration::from_secs(30)));
    assert_eq!(off.screen(1, true), Screened::Pass);
    assert!(off.judge());
    assert_eq!(off.read().max_queued, None);
    assert_eq!(off.read().late_messages, 0);
}

#[test]
fn the_worst_delay_is_per_read_and_the_counts_add_up() {
    let o = Overload::new(Some(Duration::from_millis(100)), None);
    o.observe(Side::Inside, Duration::from_millis(30));
    o.observe(Side::Outside, Duration::from_millis(150));
    o.observe(Side::Inside, Duration::from_millis(20));
    o.count_refusal();
    let first = o.read();
    assert_eq!(first.worst_queued, Duration::from_millis(150));
    assert_eq!((first.late_messages, first.refused), (1, 1));
    o.observe(Side::Inside, Duration::from_millis(5));
    let second = o.read();
    assert_eq!(second.worst_queued, Duration::from_millis(5));
    assert_eq!((second.late_messages, second.refused), (1, 1));
}

#[test]
fn a_late_invite_is_refused_and_its_retransmission_answered_again_not_judged() {
    let o = Overload::default();
    let key = o.key(
        Side::Inside,
        "a@b",
        b"1 INVITE",
        b"SIP/2.0/UDP h;branch=z9hG4bK1",
    );
    assert_eq!(o.screen(key, true), Screened::Refuse);
    // The copy read in time still gets the refusal the first one got.
    assert_eq!(o.screen(key, false), Screened::RefuseAgain);
    assert_eq!(o.read().repeated, 1);
    // Another INVITE read in time is admitted, and so are its retransmissions, even late:
    // its server transaction answers them.
    let other = o.key(
        Side::Inside,
        "c@d",
        b"1 INVITE",
        b"SIP/2.0/UDP h;branch=z9hG4bK2",
    );
    assert_ne!(key, other);
    assert_eq!(o.screen(other, false), Screened::Pass);
    assert_eq!(o.screen(other, true), Screened::Pass);
    // The key tells the sides and the branches apart; the tag is the refusal's mark.
    assert_ne!(
        key,
        o.key(
            Side::Outside,
            "a@b",
            b"1 INVITE",
            b"SIP/2.0/UDP h;branch=z9hG4bK1"
        )
    );
    assert!(Overload::refusal_tag(key).starts_with(crate::sip::shed::SHED_TAG_PREFIX));
}
