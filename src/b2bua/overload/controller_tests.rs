use super::*;

const TARGET: Duration = Duration::from_millis(50);
const HARD: Duration = Duration::from_millis(200);

/// What a simulated run did in a window of its time.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    admitted: u64,
    refused: u64,
    /// Of the refused, read past the hard limit.
    late: u64,
    /// The longest queue delay seen.
    worst: Duration,
}

/// A gateway of `capacity` calls/s reading one socket in order: each admitted INVITE costs
/// `1 / capacity` seconds of its time, each refusal `refusal_share` of that. INVITEs arrive
/// evenly at `offered` calls/s for each `(offered, secs)` phase; a message waits until the
/// gateway is free (its queue delay), and one read past `HARD` is always refused, as in
/// `Overload`. Returns the tally of each phase (all of it, or from `skip` seconds in).
fn simulate(capacity: f64, refusal_share: f64, phases: &[(f64, f64)], skip: f64) -> Vec<Tally> {
    let t0 = Instant::now();
    let at = |s: f64| t0 + Duration::from_secs_f64(s);
    let mut c = Controller::new(TARGET, t0);
    let (mut free, mut begin) = (0.0_f64, 0.0_f64);
    let mut tallies = Vec::new();
    for &(offered, secs) in phases {
        let mut tally = Tally::default();
        let n = (offered * secs) as u64;
        for i in 0..n {
            let arrival = begin + i as f64 / offered;
            let read = arrival.max(free);
            let queued = Duration::from_secs_f64(read - arrival);
            c.observe(Side::Inside, queued, at(read));
            let judged = if queued > HARD {
                c.count_refused(at(read));
                Judged::Shed
            } else {
                c.judge(at(read))
            };
            let cost = match judged {
                Judged::Admit => 1.0 / capacity,
                Judged::Shed => refusal_share / capacity,
            };
            free = read + cost;
            if arrival - begin >= skip {
                tally.worst = tally.worst.max(queued);
                tally.late += u64::from(queued > HARD);
                match judged {
                    Judged::Admit => tally.admitted += 1,
                    Judged::Shed => tally.refused += 1,
                }
            }
        }
        begin += secs;
        tallies.push(tally);
    }
    tallies
}

#[test]
fn under_capacity_nothing_is_refused_and_no_limit_is_set() {
    let t = simulate(2000.0, SHARE, &[(1800.0, 10.0)], 0.0);
    assert_eq!((t[0].admitted, t[0].refused), (18_000, 0));
}

/// A refusal costs this share of an admitted call in the simulations (about what
/// `b2bua::shed` costs against a call: bench/README.md, session 11).
const SHARE: f64 = 0.05;

/// The most calls/s a gateway of `capacity` can admit while it also refuses the rest of
/// `offered` at `SHARE` of a call each.
fn best(capacity: f64, offered: f64) -> f64 {
    (capacity - offered * SHARE) / (1.0 - SHARE)
}

#[test]
fn at_two_and_four_times_capacity_it_admits_about_the_capacity_and_refuses_the_rest() {
    for factor in [2.0, 4.0] {
        let offered = 2000.0 * factor;
        // After 2 s of finding the rate, 18 s of steady overload.
        let t = simulate(2000.0, SHARE, &[(offered, 20.0)], 2.0);
        let rate = t[0].admitted as f64 / 18.0;
        let best = best(2000.0, offered);
        assert!(
            (0.9 * best..=2000.0).contains(&rate),
            "at {factor}x: admitted {rate:.0} calls/s, at best {best:.0} ({t:?})"
        );
        assert_eq!(t[0].admitted + t[0].refused, (offered * 18.0) as u64);
    }
}

#[test]
fn under_overload_the_queue_stays_near_the_target_not_at_the_hard_limit() {
    // The hard limit alone would settle where INVITEs are read 200 ms late; the controller
    // keeps the standing queue near its 50 ms, so what it admits is answered sooner and far
    // from the PBX's retransmission (T1, 500 ms).
    let t = simulate(2000.0, SHARE, &[(8000.0, 20.0)], 2.0);
    assert!(t[0].late < t[0].refused / 100, "{t:?}");
    assert!(t[0].worst < HARD, "{t:?}");
}

#[test]
fn when_the_load_drops_it_recovers_at_once() {
    let t = simulate(2000.0, SHARE, &[(8000.0, 10.0), (1000.0, 10.0)], 0.0);
    // Within the first second of the light load the limit has let go of every call...
    let t2 = simulate(
        2000.0,
        SHARE,
        &[(8000.0, 10.0), (1000.0, 1.0), (1000.0, 9.0)],
        0.0,
    );
    assert_eq!(t2[2].refused, 0, "{t2:?}");
    assert_eq!(t2[2].admitted, 9000);
    // ...and the few refused in it were the overload's tail (a fraction of one second's).
    assert!(t[1].refused < 200, "{t:?}");
}

#[test]
fn a_burst_that_drains_within_an_interval_sets_no_limit() {
    let t0 = Instant::now();
    let mut c = Controller::new(TARGET, t0);
    // 300 INVITEs read at once, the last 80 ms late, then a quiet queue.
    for i in 0..300u64 {
        let queued = Duration::from_micros(i * 80_000 / 300);
        c.observe(Side::Inside, queued, t0);
        assert_eq!(c.judge(t0), Judged::Admit);
    }
    for ms in (10..1000).step_by(10) {
        let now = t0 + Duration::from_millis(ms);
        c.observe(Side::Inside, Duration::from_micros(200), now);
        assert_eq!(c.judge(now), Judged::Admit);
    }
    assert_eq!(c.limit(), None);
}

#[test]
fn a_standing_queue_on_either_side_sets_the_limit_and_calm_releases_it() {
    let t0 = Instant::now();
    let mut c = Controller::new(TARGET, t0);
    let ms = |n: u64| t0 + Duration::from_millis(n);
    // The inside is quiet, the outside stands 80 ms late for an interval: 100 admitted in it.
    for i in 0..100 {
        c.observe(Side::Inside, Duration::ZERO, ms(i));
        c.observe(Side::Outside, Duration::from_millis(80), ms(i));
        assert_eq!(c.judge(ms(i)), Judged::Admit);
    }
    c.observe(Side::Inside, Duration::ZERO, ms(100));
    let limit = c.limit().expect("limited");
    assert!((900.0..=1100.0).contains(&limit), "{limit}");
    // Queue gone, nothing refused: released after RELEASE_AFTER intervals.
    for i in 0..=u64::from(RELEASE_AFTER) {
        assert!(c.limit().is_some(), "released too early, interval {i}");
        c.observe(Side::Outside, Duration::ZERO, ms(150 + 100 * i));
    }
    assert_eq!(c.limit(), None);
}

/// A controller that saw everything read `queued` late and refused by the hard limit for
/// `ms` milliseconds (nothing admitted), then one message read at once: limited to the floor.
fn stalled(queued: Duration, ms: u64) -> (Controller, Instant) {
    let t0 = Instant::now();
    let mut c = Controller::new(TARGET, t0);
    for i in 0..ms {
        let now = t0 + Duration::from_millis(i);
        c.observe(Side::Inside, queued, now);
        c.count_refused(now);
    }
    c.observe(Side::Inside, Duration::ZERO, t0 + Duration::from_millis(ms));
    (c, t0)
}

#[test]
fn a_stalled_gateway_keeps_a_floor_and_is_released_when_calm() {
    let (mut c, t0) = stalled(Duration::from_millis(1500), 200);
    assert_eq!(c.limit(), Some(FLOOR));
    // A few calls at the floor's pace pass; quiet intervals release it.
    let later = t0 + Duration::from_millis(400);
    assert_eq!(c.judge(later), Judged::Admit);
    for i in 1..=u64::from(RELEASE_AFTER) + 1 {
        c.observe(Side::Inside, Duration::ZERO, later + INTERVAL * i as u32);
    }
    assert_eq!(c.limit(), None);
}

#[test]
fn a_quiet_spell_counts_as_calm_intervals() {
    let (mut c, t0) = stalled(Duration::from_millis(400), 100);
    assert_eq!(c.limit(), Some(FLOOR));
    // Nothing read for two seconds: the next message finds the limit gone, and calls at any
    // pace are admitted.
    let later = t0 + Duration::from_millis(2100);
    c.observe(Side::Inside, Duration::ZERO, later);
    assert_eq!(c.limit(), None);
    for i in 0..50 {
        assert_eq!(c.judge(later + Duration::from_millis(i)), Judged::Admit);
    }
}

#[test]
fn a_limit_set_after_a_stall_starts_from_the_rate_carried_before_it() {
    let t0 = Instant::now();
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut c = Controller::new(TARGET, t0);
    // Two seconds at 500 calls/s, read at once.
    for i in 0..1000 {
        c.observe(Side::Inside, Duration::ZERO, ms(2 * i));
        assert_eq!(c.judge(ms(2 * i)), Judged::Admit);
    }
    // A stall: one interval in which a handful were read, each 120 ms late.
    for i in 0..7 {
        c.observe(Side::Inside, Duration::from_millis(120), ms(2000 + 14 * i));
        c.judge(ms(2000 + 14 * i));
    }
    c.observe(Side::Inside, Duration::from_millis(120), ms(2101));
    let limit = c.limit().expect("a standing late queue sets a limit");
    assert!(
        limit > 400.0,
        "the limit starts near the rate carried before the stall (500/s), not at the stalled \
         interval's 70/s: {limit}"
    );
}
