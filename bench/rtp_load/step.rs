//! One step of N calls: the generator's own latency without a gateway (baseline), then the
//! gateway started, the calls set up, the media phase measured, the calls torn down and the
//! recordings checked.

use std::collections::HashMap;
use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::thread;
use std::time::Duration;

use crate::gateway::{check_wavs, files_with, free_port, Gateway};
use crate::load::{rtp_sockets, run_media, set_rcvbuf, RxStats};
use crate::proc_stats::{cpu_secs, machine_cpu, rss_kib, socket_drops, udp_buf_errors};
use crate::report::{loss_pct, Row};
use crate::sip::{CarrierCall, PbxCall, Sip};
use crate::{Args, CARRIER_IP, INSIDE_IP, OUTSIDE_IP, PBX_IP, PORT_RANGE};

fn baseline(args: &Args, n: usize, row: &mut Row) {
    if args.baseline_secs == 0 {
        return;
    }
    // Same generator, each side sending straight to the other's socket: no gateway.
    let (pbx, _) = rtp_sockets(PBX_IP, args.sockets);
    let (car, _) = rtp_sockets(CARRIER_IP, args.sockets);
    let k = args.sockets;
    let targets: Vec<(u32, SocketAddr, SocketAddr)> = (0..n)
        .map(|i| {
            let a = pbx[i % k].local_addr().expect("addr");
            let b = car[i % k].local_addr().expect("addr");
            (i as u32, b, a)
        })
        .collect();
    let m = run_media(&pbx, &car, &targets, args.baseline_secs, |_| {});
    let mut all = RxStats::new();
    all.merge(&m.rx[0]);
    all.merge(&m.rx[1]);
    row.base_p50 = all.quantile_us(0.5);
    row.base_p99 = all.quantile_us(0.99);
}

pub fn step(args: &Args, root: &Path, n: usize) -> Row {
    let mut row = Row {
        calls: n,
        ..Default::default()
    };
    baseline(args, n, &mut row);

    let dir = root.join(format!("step-{n}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("step dir");
    let pbx_sip = UdpSocket::bind((PBX_IP, 0)).expect("bind");
    let car_sip = UdpSocket::bind((CARRIER_IP, 0)).expect("bind");
    pbx_sip.set_nonblocking(true).expect("nonblocking");
    car_sip.set_nonblocking(true).expect("nonblocking");
    set_rcvbuf(&pbx_sip, 8 << 20);
    set_rcvbuf(&car_sip, 8 << 20);
    let inside = SocketAddr::new(INSIDE_IP.into(), free_port(INSIDE_IP));
    let gw = Gateway::start(args, &dir, inside, car_sip.local_addr().expect("addr"));
    let gw_pid = gw.pid.clone();
    thread::sleep(Duration::from_millis(300));
    row.rss_idle_mib = rss_kib(&gw_pid) as f64 / 1024.0;

    let (pbx_rtp, _) = rtp_sockets(PBX_IP, args.sockets);
    let (car_rtp, _) = rtp_sockets(CARRIER_IP, args.sockets);
    let mut sip = Sip {
        pbx: pbx_sip,
        car: car_sip,
        inside,
        pid: std::process::id(),
        n,
        pbx_calls: vec![PbxCall::default(); n],
        car_calls: vec![CarrierCall::default(); n],
        b_legs: HashMap::new(),
        pbx_rtp: pbx_rtp.iter().map(|s| s.local_addr().expect("a")).collect(),
        car_rtp: car_rtp.iter().map(|s| s.local_addr().expect("a")).collect(),
        other_requests: 0,
        failures: 0,
    };
    let (up, setup_s) = sip.setup(args.cps);
    row.up = up;
    row.setup_s = setup_s;
    eprintln!(
        "  step {n}: {up}/{n} calls set up in {setup_s:.1} s ({} failures); media for {} s",
        sip.failures, args.secs
    );
    let targets: Vec<(u32, SocketAddr, SocketAddr)> = (0..n)
        .filter(|&i| sip.established(i))
        .filter_map(|i| Some((i as u32, sip.pbx_calls[i].rtp_to?, sip.car_calls[i].rtp_to?)))
        .collect();

    let gw_cpu0 = cpu_secs(&gw_pid);
    let (busy0, _) = machine_cpu();
    let udp0 = udp_buf_errors();
    let gw_drops0 = socket_drops(|ip, port| {
        (ip == INSIDE_IP || ip == OUTSIDE_IP) && (PORT_RANGE[0]..=PORT_RANGE[1]).contains(&port)
    });
    let mut rss_max = 0u64;
    let m = run_media(&pbx_rtp, &car_rtp, &targets, args.secs, |_| {
        rss_max = rss_max.max(rss_kib(&gw_pid));
    });
    let gw_cpu = cpu_secs(&gw_pid) - gw_cpu0;
    let (busy1, _) = machine_cpu();
    row.udp_buf_err = udp_buf_errors().saturating_sub(udp0);
    row.gw_drops = socket_drops(|ip, port| {
        (ip == INSIDE_IP || ip == OUTSIDE_IP) && (PORT_RANGE[0]..=PORT_RANGE[1]).contains(&port)
    })
    .saturating_sub(gw_drops0);
    row.gen_drops = m.gen_sock_drops;
    rss_max = rss_max.max(rss_kib(&gw_pid));
    row.rss_mib = rss_max as f64 / 1024.0;
    row.kib_per_call = if up > 0 {
        (rss_max as f64 - row.rss_idle_mib * 1024.0) / up as f64
    } else {
        0.0
    };
    row.sent = m.sent;
    for d in 0..2 {
        row.got[d] = m.rx[d].received - m.rx[d].foreign;
        row.loss[d] = loss_pct(m.sent[d], row.got[d]);
        row.p50[d] = m.rx[d].quantile_us(0.5);
        row.p99[d] = m.rx[d].quantile_us(0.99);
    }
    row.max_ms = m.rx[0].max_us.max(m.rx[1].max_us) as f64 / 1000.0;
    row.gw_cpu_pct = 100.0 * gw_cpu / m.wall_s;
    let pkts = (row.got[0] + row.got[1]).max(1);
    row.gw_us_per_pkt = gw_cpu * 1e6 / pkts as f64;
    row.gen_cpu_pct = 100.0 * m.gen_cpu_s / m.wall_s;
    row.other_cpu_pct = (100.0 * ((busy1 - busy0) - gw_cpu - m.gen_cpu_s) / m.wall_s).max(0.0);
    row.late_ticks = m.tx.late_ticks;
    row.send_s = m.tx.send_s;
    row.drain_s = m.drain_s;

    row.byes = sip.teardown(args.cps.max(500));
    drop(sip);
    row.clean_exit = gw.stop();
    let mut wavs = Vec::new();
    files_with(&dir.join("recordings"), ".wav", 4, &mut wavs);
    let mut parts = Vec::new();
    files_with(&dir.join("recordings"), ".part", 4, &mut parts);
    row.wavs = wavs.len();
    row.parts = parts.len();
    let (ok, checked, lo, hi) = check_wavs(&wavs, 5);
    row.wav_ok = format!("{ok}/{checked} {lo:.0}-{hi:.0}s");
    // The generator must have kept the 20 ms pace (within 2 %): otherwise N calls were not
    // offered at 50 packets/s each and the step says nothing about N.
    row.pass = up == n
        && row.send_s <= args.secs as f64 * 1.02
        && row.loss[0] < 0.1
        && row.loss[1] < 0.1
        && row.wavs == up
        && ok == checked
        && row.clean_exit;
    row.voice_ok = row.p99[0].max(row.p99[1]) < 150_000.0;
    row
}
