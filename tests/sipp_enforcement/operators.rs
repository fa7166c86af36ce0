//! Operators with the CLI against the running gateway: a number suspended and lifted with
//! `trunkguard enforce`, the carrier's counts from `trunkguard report`.

use super::*;

/// An operator suspends the trunk's number with `trunkguard enforce impose` while the gateway
/// runs: the next call presenting it gets 403, `enforce list` shows the step, `enforce lift`
/// lifts it and the next call is admitted; the log holds both rows with the operator's name.
#[test]
fn an_operator_suspends_and_lifts_a_number_with_the_cli() {
    let mut scene = Scene::start(TrunkLimits::default());
    // An order about a trunk the gateway does not have is rejected, not "applied".
    let typo = cli(
        &scene,
        &[
            "enforce",
            "impose",
            "--trunk",
            "interopp",
            "--step",
            "suspend_trunk",
            "--operator",
            "alice",
            "--reason",
            "typo",
        ],
    );
    match typo {
        Err(e) => scene.ensure(e.contains("rejected: no trunk is named `interopp`"), || {
            format!("the order about an unknown trunk failed otherwise: {e}")
        }),
        Ok(out) => scene.fail(format!("an order about an unknown trunk succeeded: {out}")),
    }
    let r = cli(
        &scene,
        &[
            "enforce",
            "impose",
            "--trunk",
            TRUNK,
            "--number",
            TRUNK_NUMBER,
            "--step",
            "suspend_number",
            "--operator",
            "alice",
            "--reason",
            "carrier request",
        ],
    );
    let out = scene.ok(r);
    scene.ensure(out.contains(" applied: imposed suspend_number"), || {
        format!("impose printed: {out}")
    });

    let refused = pbx_calls(&mut scene, "pbx-refused", "pbx_uac_refused.xml", 1, 10);
    let got_403 = count(&scene, refused, "403_Recv");
    scene.ensure(got_403 == 1, || format!("{got_403} calls got 403"));

    let list = scene.ok(cli(&scene, &["enforce", "list"]));
    scene.ensure(
        list.lines().count() == 1
            && list.contains("\tsuspend_number\t")
            && list.contains(&format!("\t{TRUNK}\t{}\t", caller_digits()))
            && list.contains("carrier request"),
        || format!("enforce list printed: {list}"),
    );

    let r = cli(
        &scene,
        &[
            "enforce",
            "lift",
            "--trunk",
            TRUNK,
            "--number",
            TRUNK_NUMBER,
            "--operator",
            "alice",
            "--reason",
            "carrier agreed",
        ],
    );
    let out = scene.ok(r);
    scene.ensure(out.contains(" applied: lifted suspend_number"), || {
        format!("lift printed: {out}")
    });
    let list = scene.ok(cli(&scene, &["enforce", "list"]));
    scene.ensure(list.trim() == "no step in force", || {
        format!("enforce list after the lift printed: {list}")
    });

    let uas = carrier(&mut scene, "carrier-uas", Scenario::Builtin("uas"), 1);
    let again = pbx_calls(&mut scene, "pbx-again", "pbx_uac_any.xml", 1, 10);
    let got_200 = count(&scene, again, "200_Recv");
    scene.ensure(got_200 == 1, || {
        format!("{got_200} calls answered after the lift")
    });
    carrier_reached(&mut scene, uas, 1);

    let log = enforcement_log(&scene);
    let rows: Vec<(&str, &str, &str, &str)> = log
        .iter()
        .map(|r| {
            (
                field(r, "action"),
                field(r, "cause"),
                field(r, "operator"),
                field(r, "step"),
            )
        })
        .collect();
    scene.ensure(
        rows == [
            ("impose", "operator", "alice", "suspend_number"),
            ("lift", "operator", "alice", "suspend_number"),
        ] && log[0].get("imposition") == log[1].get("imposition")
            && field(&log[0], "reason") == "carrier request"
            && field(&log[1], "reason") == "carrier agreed",
        || format!("log: {log:#?}"),
    );

    let cdrs = stop_and_read_cdrs(&mut scene);
    scene.ensure(
        cdrs.len() == 2
            && refused_with(&cdrs[1], 403, "caller_id_suspended")
            && cdrs[0].outcome.disposition == Disposition::Answered,
        || {
            format!(
                "expected a refused 403 caller_id_suspended, then an answered call:\n{}",
                summary(&cdrs)
            )
        },
    );
}

/// After three answered calls and two the carrier answers 404, `trunkguard report` (daily,
/// CSV) prints the stable header, a trunk row and a caller-ID row with those counts.
#[test]
fn the_report_counts_what_was_placed() {
    let mut scene = Scene::start(TrunkLimits::default());
    let uas = carrier(&mut scene, "carrier-uas", Scenario::Builtin("uas"), 3);
    pbx_calls(&mut scene, "pbx-answered", "pbx_uac.xml", 3, 10);
    carrier_reached(&mut scene, uas, 3);
    let c404 = carrier(
        &mut scene,
        "carrier-404",
        Scenario::File("carrier_uas_404.xml"),
        2,
    );
    pbx_calls(&mut scene, "pbx-404s", "pbx_uac_any.xml", 2, 10);
    carrier_reached(&mut scene, c404, 2);
    // A stop flushes every CDR (and the buckets in the same transactions).
    let cdrs = stop_and_read_cdrs(&mut scene);
    scene.ensure(cdrs.len() == 5, || format!("CDRs:\n{}", summary(&cdrs)));

    let r = cli(
        &scene,
        &[
            "report",
            "--from",
            &today(),
            "--to",
            &tomorrow(),
            "--bucket",
            "day",
            "--format",
            "csv",
        ],
    );
    let out = scene.ok(r);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    scene.ensure(header == trunkguard::monitor::report::COLUMNS, || {
        format!("report header: {header:?}")
    });
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| scene.fail(format!("no column {name}")))
    };
    let (subject, trunk, number) = (col("subject"), col("trunk"), col("number"));
    let (attempts, answered, invalid) = (col("attempts"), col("answered"), col("invalid_number"));
    let (bucket, asr) = (col("bucket_start"), col("asr"));
    let find = |kind: &str, n: &str| {
        rows.iter()
            .find(|r| r[subject] == kind && r[trunk] == TRUNK && r[number] == n)
            .unwrap_or_else(|| scene.fail(format!("no {kind} row for {n:?} in:\n{out}")))
    };
    for row in [find("trunk", ""), find("caller_id", caller_digits())] {
        scene.ensure(
            row[attempts] == "5"
                && row[answered] == "3"
                && row[invalid] == "2"
                && row[asr] == "0.6000"
                && row[bucket] == format!("{}T00:00:00Z", today()),
            || format!("row {row:?} in:\n{out}"),
        );
    }
    scene.ensure(rows.len() == 2, || {
        format!("expected a trunk row and a caller_id row:\n{out}")
    });
}
