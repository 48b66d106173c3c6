//! DNS propagation against real servers: an authoritative Knot serving `lab.test.`
//! with a 3 s TTL, Unbound resolvers caching in front of it, and the exporter asking
//! all of them. A changed answer reaches each resolver only when its cached copy
//! expires; the exporter must see the ratio climb to 1 and measure about one TTL.

mod support;

use rpo_lab::{Knot, Unbound, Zone};
use std::time::{Duration, Instant};
use support::dns::*;
use support::Exporter;

const TTL: f64 = 3.0;

fn zone() -> Zone {
    Zone::new(ZONE).ttl(TTL as u32).record("www", "A", USE1)
}

/// The record expecting eu-west-1's answer while the zone still serves us-east-1's.
fn record_yaml(resolvers: &[String], authoritative: &str) -> String {
    format!(
        "dns:\n  interval: 200ms\n  timeout: 200ms\n  records:\n    - name: {RECORD}\n      type: A\n      active_region: eu-west-1\n      answers: {{ us-east-1: {USE1}, eu-west-1: {EUW1} }}\n      resolvers: {}\n{authoritative}",
        servers(resolvers)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_answer_spreads_as_caches_expire() {
    let mut zone = zone();
    let knot = Knot::start(&zone).await.expect("start Knot (run scripts/install-deps.sh?)");
    // Three resolvers that keep answers for at most 1 s, 2 s and the full TTL (3 s):
    // after the change the capped ones switch first, the uncapped one last.
    let mut resolvers = Vec::new();
    for cap in [Some(1), Some(2), None] {
        resolvers.push(Unbound::start(&[(ZONE, knot.port())], cap).await.expect("start Unbound"));
    }
    let addrs: Vec<String> = resolvers.iter().map(Unbound::addr).collect();
    // The authoritative servers are found from the zone's NS record (ns1.lab.test. is
    // 127.0.0.1), asked on Knot's port.
    let auth = format!("      authoritative: discover\n      discover_port: {}\n", knot.port());
    let exporter = Exporter::start(&dns_only_config(&record_yaml(&addrs, &auth))).await;
    let record = rec(RECORD, "A");
    let last = addrs[2].clone();

    let m = wait_metrics(
        &exporter,
        Duration::from_secs(10),
        "every server asked, none serving eu-west-1's answer",
        |m| {
            m.get("rpo_dns_propagation_ratio", &record) == Some(0.0)
                && addrs.iter().all(|a| m.get("rpo_dns_query_success", &www(a, "recursive")) == Some(1.0))
                && m.get("rpo_dns_answer_matches", &www(&knot.addr(), "authoritative")) == Some(0.0)
        },
    )
    .await;
    assert_eq!(m.get("rpo_dns_authoritative_servers", &record), Some(1.0), "ns1.lab.test. discovered");
    assert_eq!(m.get("rpo_dns_published_timestamp_seconds", &record), None, "not published yet");
    assert_eq!(m.get("rpo_dns_propagation_seconds", &record), None);
    assert_eq!(
        m.get("rpo_dns_soa_serial", &[("dns_zone", ZONE.into()), ("resolver", knot.addr())]),
        Some(1.0)
    );
    assert!(m.get("rpo_dns_expected_answer_changed_timestamp_seconds", &record).is_some());
    assert!(m.find("rpo_dns_record_info", &[("active_region", "eu-west-1".into())]).len() == 1);
    // A round every 200 ms, each at most a 200 ms timeout: a stopped loop shows by its age.
    let age = m.get("rpo_dns_round_age_seconds", &[]).expect("the DNS round's age");
    assert!((0.0..1.0).contains(&age), "DNS round age {age}");

    // Change the zone right after the full-TTL resolver cached the old answer afresh,
    // so its copy has about a whole TTL to live: the last switch comes one TTL later.
    let mut ttls_seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ttl = exporter.scrape().await.get("rpo_dns_answer_ttl_seconds", &www(&last, "recursive"));
        if ttls_seen.last() != Some(&ttl) {
            ttls_seen.push(ttl);
        }
        if ttl == Some(TTL) && ttls_seen.len() > 1 {
            break;
        }
        assert!(Instant::now() < deadline, "never saw a fresh cache fill; TTLs seen {ttls_seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    zone.set("www", "A", EUW1);
    let changed = unix_now();
    knot.load(&zone).await.unwrap();
    println!("TTLs the full-TTL resolver reported before the change: {ttls_seen:?}");

    // Follow the ratio and each resolver until all serve the new answer.
    let mut ratios: Vec<(f64, f64)> = Vec::new();
    let mut switched: Vec<Option<f64>> = vec![None; addrs.len()];
    let deadline = Instant::now() + Duration::from_secs(10);
    let m = loop {
        let m = scrape_fast(&exporter).await;
        let t = unix_now() - changed;
        let ratio = m.get("rpo_dns_propagation_ratio", &record);
        if let Some(r) = ratio.filter(|r| ratios.last().map(|(_, v)| v) != Some(r)) {
            ratios.push((t, r));
        }
        for (i, a) in addrs.iter().enumerate() {
            if switched[i].is_none() && m.get("rpo_dns_answer_matches", &www(a, "recursive")) == Some(1.0) {
                switched[i] = Some(t);
            }
        }
        if ratio == Some(1.0) && m.get("rpo_dns_propagation_seconds", &record).is_some() {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "not propagated after 10 s: ratios {ratios:?}\nlog:\n{}",
            exporter.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let timeline: Vec<String> = ratios.iter().map(|(t, r)| format!("{r:.2} at +{t:.2} s")).collect();
    println!("Propagation ratio after the change: {}", timeline.join(", "));
    for (cap, t) in ["1 s", "2 s", "none (3 s)"].iter().zip(&switched) {
        println!("  resolver with cache cap {cap} switched at +{:.2} s", t.unwrap());
    }
    assert_eq!(ratios.first().map(|(_, r)| *r), Some(0.0), "{ratios:?}");
    assert!(ratios.windows(2).all(|w| w[0].1 < w[1].1), "the ratio only climbs: {ratios:?}");
    let published = m.get("rpo_dns_published_timestamp_seconds", &record).expect("published");
    let propagation = m.get("rpo_dns_propagation_seconds", &record).expect("propagation measured");
    println!(
        "Zone changed; published (every authoritative server serving it) {:.3} s later; propagation to every resolver took {propagation:.3} s (TTL {TTL} s)",
        published - changed
    );
    assert!(
        (-0.05..1.0).contains(&(published - changed)),
        "published {:.3} s after the change",
        published - changed
    );
    // Tolerance: Unbound counts whole seconds and still serves a copy at TTL 0, so one
    // cached just after a second boundary lives up to TTL + 1 s; the exporter notices a
    // switch within one interval (0.2 s) and the change came up to ~0.4 s after the fill.
    assert!(
        (TTL - 1.0..=TTL + 1.5).contains(&propagation),
        "propagation took {propagation:.3} s, expected the TTL ({TTL} s) within -1 s/+1.5 s"
    );
    assert_eq!(
        m.get("rpo_dns_soa_serial", &[("dns_zone", ZONE.into()), ("resolver", knot.addr())]),
        Some(2.0)
    );
    assert_eq!(m.get("rpo_dns_soa_serials_agree", &[("dns_zone", ZONE.into())]), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn authoritative_servers_disagree_until_the_lagging_one_catches_up() {
    let mut zone = zone();
    let primary = Knot::start(&zone).await.expect("start Knot");
    // A second authoritative server of the same zone that will miss the update.
    let secondary = Knot::start(&zone).await.expect("start the second Knot");
    let resolver = Unbound::start(&[(ZONE, primary.port())], None).await.expect("start Unbound");
    let auth = format!("      authoritative: {}\n", servers(&[primary.addr(), secondary.addr()]));
    let exporter = Exporter::start(&dns_only_config(&record_yaml(&[resolver.addr()], &auth))).await;
    let record = rec(RECORD, "A");
    let zone_labels = [("dns_zone", ZONE.to_owned())];
    let serial = |server: &Knot| [("dns_zone", ZONE.to_owned()), ("resolver", server.addr())];

    wait_metrics(&exporter, Duration::from_secs(10), "both servers on serial 1", |m| {
        m.get("rpo_dns_soa_serials_agree", &zone_labels) == Some(1.0)
            && m.get("rpo_dns_soa_serial", &serial(&primary)) == Some(1.0)
            && m.get("rpo_dns_soa_serial", &serial(&secondary)) == Some(1.0)
    })
    .await;

    zone.set("www", "A", EUW1);
    primary.load(&zone).await.unwrap();
    let m = wait_metrics(&exporter, Duration::from_secs(5), "the servers to disagree", |m| {
        m.get("rpo_dns_soa_serials_agree", &zone_labels) == Some(0.0)
    })
    .await;
    assert_eq!(m.get("rpo_dns_soa_serial", &serial(&primary)), Some(2.0));
    assert_eq!(m.get("rpo_dns_soa_serial", &serial(&secondary)), Some(1.0));
    // The primary serves the new answer, the secondary the old one: not published,
    // since resolvers asking the secondary would still cache the old answer.
    let m = wait_metrics(&exporter, Duration::from_secs(5), "the primary's new answer", |m| {
        m.get("rpo_dns_answer_matches", &www(&primary.addr(), "authoritative")) == Some(1.0)
    })
    .await;
    assert_eq!(m.get("rpo_dns_answer_matches", &www(&secondary.addr(), "authoritative")), Some(0.0));
    assert_eq!(m.get("rpo_dns_published_timestamp_seconds", &record), None);
    println!("Serials 2 (primary) and 1 (secondary): rpo_dns_soa_serials_agree 0, not published");

    secondary.load(&zone).await.unwrap();
    let caught_up = unix_now();
    let m = wait_metrics(&exporter, Duration::from_secs(5), "the servers to agree again", |m| {
        m.get("rpo_dns_soa_serials_agree", &zone_labels) == Some(1.0)
            && m.get("rpo_dns_published_timestamp_seconds", &record).is_some()
    })
    .await;
    assert_eq!(m.get("rpo_dns_soa_serial", &serial(&secondary)), Some(2.0));
    let published = m.get("rpo_dns_published_timestamp_seconds", &record).unwrap();
    assert!(
        (-0.05..1.0).contains(&(published - caught_up)),
        "published {:.3} s after the catch-up",
        published - caught_up
    );
    // The resolver then follows within a TTL (and a second of Unbound's whole-second clock).
    let m = wait_metrics(&exporter, Duration::from_secs(8), "the resolver to follow", |m| {
        m.get("rpo_dns_propagation_seconds", &record).is_some()
    })
    .await;
    let propagation = m.get("rpo_dns_propagation_seconds", &record).unwrap();
    println!("After the catch-up: published, then propagated in {propagation:.3} s");
    assert!(propagation <= TTL + 1.5, "{propagation}");
}
