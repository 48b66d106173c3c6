//! Adversarial suite, property tests with a fixed seed and a bounded budget (a few
//! seconds in the normal run): the config loader given arbitrary and perturbed
//! YAML never panics and always answers `Ok` or an error naming the file; the DNS
//! answer parser given arbitrary bytes and mutated real answers never panics, and
//! never takes an answer with another ID for the one asked. Plus the inputs a
//! random search does not find: deep nesting, alias bombs, huge scalars.

use hickory_net::proto::op::{Edns, Message, OpCode, Query};
use hickory_net::proto::rr::rdata::{A, CNAME, SOA};
use hickory_net::proto::rr::{Name, RData, Record, RecordType};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, RngSeed, TestRunner};
use rpo_exporter::dns::query::{judge, read_reply, Mode, Reply};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Instant;

const FILE: &str = "/fuzz/config.yml";

fn runner(cases: u32, seed: u64) -> TestRunner {
    TestRunner::new(RunnerConfig {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        max_shrink_iters: 2_000,
        ..RunnerConfig::default()
    })
}

/// Valid and nearly valid configs to perturb: the config tests' files (one per
/// mistake, each otherwise complete) and the shipped examples.
fn seeds() -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("tests/testdata/config"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.push(root.join("deploy/docker/rpo-exporter.yml"));
    files.push(root.join("deploy/systemd/rpo-exporter.yml"));
    files.sort();
    // Password files as paths that exist wherever the suite runs, so the
    // examples that name a deployment's secret load here too.
    let password = root.join("tests/testdata/config/password");
    let seeds: Vec<String> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines()
                .map(|l| match l.split_once("password_file: ") {
                    Some((indent, _)) => format!("{indent}password_file: {}\n", password.display()),
                    None => format!("{l}\n"),
                })
                .collect()
        })
        .collect();
    assert!(seeds.len() >= 20, "config seeds: {}", seeds.len());
    seeds
}

/// The loader's contract on one input: no panic (proptest catches and reports
/// one), and an error names the file.
fn check_config(text: &str) -> Result<(), TestCaseError> {
    match rpo_exporter::load::text(Path::new(FILE), text) {
        Ok(_) => Ok(()),
        Err(e) => {
            prop_assert_eq!(&e.file, &PathBuf::from(FILE));
            let shown = e.to_string();
            prop_assert!(shown.starts_with(&format!("{FILE}: ")), "error without the file: {}", shown);
            prop_assert!(!e.problem.trim().is_empty(), "empty problem: {}", shown);
            Ok(())
        }
    }
}

/// One edit of a text: what a stray keystroke, a bad merge or a cut file does.
#[derive(Debug, Clone)]
enum Edit {
    Delete { at: usize, len: usize },
    Insert { at: usize, text: String },
    Truncate { at: usize },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    Reindent { line: usize, spaces: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    let tokens = prop::sample::select(vec![
        ":",
        " ",
        "\n",
        "-",
        "- ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "#",
        "&a ",
        "*a",
        "!!str ",
        "!!binary ",
        "|",
        ">",
        "'",
        "\"",
        "\\",
        "%YAML 1.2\n",
        "---\n",
        "...\n",
        "? ",
        "\t",
        "~",
        "null",
        "0x1F",
        "1e309",
        "-0",
        "9999999999999999999999",
        "nan",
        ".inf",
        "ms",
        "1s",
        "100ns",
        "5000000000000h",
        "<<: *a\n",
        "\u{0}",
        "\u{feff}",
        "é",
        "\u{202e}",
        "clusters",
        "nodes",
        "dns",
        "health",
        "heartbeat",
        "interval",
        "records",
        "resolvers",
        "probes",
    ]);
    prop_oneof![
        (any::<usize>(), 1..40usize).prop_map(|(at, len)| Edit::Delete { at, len }),
        (any::<usize>(), prop::collection::vec(tokens, 1..4))
            .prop_map(|(at, t)| Edit::Insert { at, text: t.concat() }),
        (any::<usize>(), "[ -~]{1,12}").prop_map(|(at, text)| Edit::Insert { at, text }),
        any::<usize>().prop_map(|at| Edit::Truncate { at }),
        any::<usize>().prop_map(|line| Edit::DuplicateLine { line }),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines { a, b }),
        (any::<usize>(), 0..9usize).prop_map(|(line, spaces)| Edit::Reindent { line, spaces }),
    ]
}

/// The byte offset at or before `at % len` that is a char boundary.
fn boundary(s: &str, at: usize) -> usize {
    let mut i = at % (s.len() + 1);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, edit: &Edit) -> String {
    let mut s = text.to_owned();
    let mut lines: Vec<String> = s.lines().map(str::to_owned).collect();
    match edit {
        Edit::Delete { at, len } => {
            let from = boundary(&s, *at);
            let to = boundary(&s, from + len);
            if to > from {
                s.replace_range(from..to, "");
            }
            return s;
        }
        Edit::Insert { at, text } => {
            s.insert_str(boundary(&s, *at), text);
            return s;
        }
        Edit::Truncate { at } => {
            s.truncate(boundary(&s, *at));
            return s;
        }
        _ if lines.is_empty() => return s,
        Edit::DuplicateLine { line } => {
            let l = lines[line % lines.len()].clone();
            lines.insert(line % lines.len(), l);
        }
        Edit::SwapLines { a, b } => {
            let n = lines.len();
            lines.swap(a % n, b % n);
        }
        Edit::Reindent { line, spaces } => {
            let n = lines.len();
            let l = &mut lines[line % n];
            *l = format!("{}{}", " ".repeat(*spaces), l.trim_start());
        }
    }
    lines.join("\n")
}

#[test]
fn perturbed_configs_load_or_name_the_file() {
    let seeds = seeds();
    let start = Instant::now();
    let (mut ok, mut err) = (0, 0);
    // Half the cases start from a config that loads, so edits reach the
    // validation behind the parser, not only the parser.
    let valid: Vec<usize> =
        (0..seeds.len()).filter(|i| rpo_exporter::load::text(Path::new(FILE), &seeds[*i]).is_ok()).collect();
    assert!(valid.len() >= 3, "valid seeds: {}", valid.len());
    let seed = prop_oneof![prop::sample::select(valid), 0..seeds.len()];
    let strategy = (seed, prop::collection::vec(edit(), 1..6));
    let counts = std::cell::Cell::new((0u32, 0u32));
    runner(3000, 0x5eed_c0f1)
        .run(&strategy, |(seed, edits)| {
            let text = edits.iter().fold(seeds[seed].clone(), |t, e| apply(&t, e));
            let r = rpo_exporter::load::text(Path::new(FILE), &text).is_ok();
            let (o, e) = counts.get();
            counts.set(if r { (o + 1, e) } else { (o, e + 1) });
            check_config(&text)
        })
        .unwrap_or_else(|e| panic!("the config loader broke its contract: {e}"));
    (ok, err) = (ok + counts.get().0, err + counts.get().1);
    println!(
        "config loader, perturbed files: {} cases, {ok} loaded, {err} refused naming the file, in {:?}",
        ok + err,
        start.elapsed()
    );
    assert!(ok > 0 && err > 0, "the perturbations should both keep and break configs");
}

#[test]
fn arbitrary_text_loads_or_names_the_file() {
    let start = Instant::now();
    let strategy = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "[ -~\n\t]{0,300}",
        prop::collection::vec(
            prop::sample::select(vec![
                "clusters:",
                "\n",
                "  ",
                "- ",
                "name: x",
                "nodes:",
                "{",
                "}",
                "[",
                "]",
                ": ",
                "rpo: 1m",
                "&a",
                "*a",
                "dns:",
                "health:",
                "records:",
                "? ",
                "!!map",
                "---",
                "|",
                "'",
                "\"",
            ]),
            0..60
        )
        .prop_map(|t| t.concat()),
    ];
    runner(1000, 0x5eed_c0f2)
        .run(&strategy, |text| check_config(&text))
        .unwrap_or_else(|e| panic!("the config loader broke its contract: {e}"));
    println!("config loader, arbitrary text: 1000 cases in {:?}", start.elapsed());
}

/// Inputs a random search will not stumble on: each must come back as an error
/// naming the file, quickly, without exhausting the stack or the memory.
#[test]
fn pathological_yaml_is_refused_quickly() {
    let mut laughs =
        String::from("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
    for i in 1..10 {
        let p = i - 1;
        laughs.push_str(&format!("a{i}: &a{i} [*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p},*a{p}]\n"));
    }
    laughs.push_str("clusters: *a9\n");
    let nested_block: String = (0..5_000).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
    let cases = [
        ("100,000 nested flow sequences", "[".repeat(100_000)),
        ("100,000 nested flow maps", "{a: ".repeat(100_000)),
        ("5,000 nested block maps", nested_block),
        ("a billion laughs (anchors nine deep)", laughs),
        ("a 4 MiB scalar", format!("clusters:\n  - name: {}\n", "x".repeat(4 << 20))),
        ("100,000 clusters", "clusters:\n".to_owned() + &"  - {}\n".repeat(100_000)),
        ("a NUL byte", "clusters: \u{0}\n".to_owned()),
        ("a byte-order mark and nothing else", "\u{feff}".to_owned()),
    ];
    for (what, text) in cases {
        let start = Instant::now();
        let result = rpo_exporter::load::text(Path::new(FILE), &text);
        let took = start.elapsed();
        match &result {
            Ok(_) => panic!("{what}: accepted"),
            Err(e) => {
                let shown = e.to_string();
                println!(
                    "pathological YAML, {what}: refused in {took:?}: {}",
                    &shown[..shown.len().min(160)]
                );
                assert!(shown.starts_with(&format!("{FILE}: ")), "{what}: {shown}");
            }
        }
        assert!(took.as_secs_f64() < 5.0, "{what}: took {took:?}");
    }
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

/// A query as the exporter sends it.
fn query() -> Message {
    let mut m = Message::query();
    m.metadata.id = 0x4242;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(name("www.lab.test."), RecordType::A));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    m.set_edns(edns);
    m
}

/// Real answers to it: addresses, a CNAME chain, an SOA in the authority
/// section, EDNS, name compression throughout.
fn real_answers(q: &Message) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for variant in 0..4 {
        let mut m = Message::response(q.metadata.id, OpCode::Query);
        m.metadata.recursion_available = true;
        m.metadata.authoritative = variant % 2 == 0;
        m.queries = q.queries.clone();
        let ip = |i: u8| RData::A(A(Ipv4Addr::new(192, 0, 2, i)));
        match variant {
            0 => m.answers = vec![Record::from_rdata(name("www.lab.test."), 3, ip(10))],
            1 => {
                m.answers = vec![
                    Record::from_rdata(name("www.lab.test."), 60, RData::CNAME(CNAME(name("lb.lab.test.")))),
                    Record::from_rdata(name("lb.lab.test."), 30, ip(20)),
                    Record::from_rdata(name("lb.lab.test."), 30, ip(21)),
                ]
            }
            2 => {
                let soa = SOA::new(name("ns.lab.test."), name("hostmaster.lab.test."), 7, 60, 60, 600, 5);
                m.authorities = vec![Record::from_rdata(name("lab.test."), 5, RData::SOA(soa))];
            }
            _ => m.answers = (1..=40).map(|i| Record::from_rdata(name("www.lab.test."), 3, ip(i))).collect(),
        }
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        m.set_edns(edns);
        out.push(m.to_vec().unwrap());
    }
    out
}

/// Everything the exporter does with received bytes: judge them against the
/// query, and an answer as each mode would.
fn parse_everything(q: &Message, bytes: &[u8]) -> Reply {
    let reply = read_reply(q, bytes);
    if let Reply::Answer(m) = &reply {
        for mode in Mode::ALL {
            for rtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
                let _ = judge(m, &name("www.lab.test."), rtype, mode);
            }
        }
    }
    reply
}

#[test]
fn dns_answers_real_mutated_and_arbitrary_never_panic() {
    let q = query();
    let real = real_answers(&q);
    for r in &real {
        assert!(matches!(parse_everything(&q, r), Reply::Answer(_)), "a real answer is taken");
        let mut other = r.clone();
        other[1] ^= 1;
        assert!(matches!(parse_everything(&q, &other), Reply::Ignored), "another ID is ignored");
    }
    let start = Instant::now();
    runner(3000, 0x5eed_d001)
        .run(&prop::collection::vec(any::<u8>(), 0..600), |bytes| {
            parse_everything(&q, &bytes);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("DNS parsing broke on arbitrary bytes: {e}"));

    // Mutations of real answers: flipped bits, overwritten bytes (counts and
    // compression pointers among them), cuts and insertions.
    let mutation = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| (0u8, at, b)),
        (any::<usize>(), 0..8u8).prop_map(|(at, bit)| (1u8, at, bit)),
        any::<usize>().prop_map(|at| (2u8, at, 0)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| (3u8, at, b)),
        (4..12usize, any::<u8>()).prop_map(|(at, b)| (0u8, at, b)),
    ];
    let (mut taken, mut ignored, mut garbage) = (0, 0, 0);
    let counts = std::cell::Cell::new((0, 0, 0));
    runner(4000, 0x5eed_d002)
        .run(&(0..real.len(), prop::collection::vec(mutation, 1..6)), |(i, edits)| {
            let mut bytes = real[i].clone();
            for (kind, at, b) in edits {
                if bytes.is_empty() {
                    break;
                }
                let at = at % bytes.len();
                match kind {
                    0 => bytes[at] = b,
                    1 => bytes[at] ^= 1 << b,
                    2 => bytes.truncate(at),
                    _ => bytes.insert(at, b),
                }
            }
            let reply = parse_everything(&q, &bytes);
            let (t, ig, g) = counts.get();
            counts.set(match reply {
                Reply::Answer(m) => {
                    // Whatever else changed, an accepted answer is to our question.
                    prop_assert_eq!(m.metadata.id, q.metadata.id);
                    prop_assert_eq!(&m.queries, &q.queries);
                    (t + 1, ig, g)
                }
                Reply::Ignored => (t, ig + 1, g),
                Reply::Garbage => (t, ig, g + 1),
            });
            Ok(())
        })
        .unwrap_or_else(|e| panic!("DNS parsing broke on a mutated answer: {e}"));
    (taken, ignored, garbage) = (taken + counts.get().0, ignored + counts.get().1, garbage + counts.get().2);
    println!(
        "DNS answers: 3000 arbitrary and 4000 mutated ({taken} taken, {ignored} ignored, {garbage} garbage) in {:?}",
        start.elapsed()
    );
    assert!(taken > 0 && garbage > 0, "the mutations should both keep and break answers");
}
