//! `ustat list` on real runtimes names every probe `readelf -n` shows, with the right number
//! of sites and semaphores, and can resolve every site.

mod support;

use std::{collections::BTreeMap, process::Command};

use support::run_ustat;

const PYTHON: &str = "/usr/bin/python3.11";
const LIBJVM: &str = "/usr/lib/jvm/java-17-openjdk-amd64/lib/server/libjvm.so";

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    sites: usize,
    semaphore: bool,
}

/// provider:name -> sites and semaphore, from `readelf -n`.
fn readelf(path: &str) -> BTreeMap<String, Counts> {
    let out = Command::new("readelf")
        .args(["-n", path])
        .output()
        .expect("readelf");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut probes: BTreeMap<String, Counts> = BTreeMap::new();
    let mut provider = "";
    let mut name = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(p) = line.strip_prefix("Provider: ") {
            provider = p;
        } else if let Some(n) = line.strip_prefix("Name: ") {
            name = format!("{provider}:{n}");
        } else if let Some(rest) = line.strip_prefix("Location: ") {
            let semaphore = rest.rsplit("Semaphore: ").next().unwrap();
            let entry = probes.entry(name.clone()).or_default();
            entry.sites += 1;
            entry.semaphore |=
                u64::from_str_radix(semaphore.trim_start_matches("0x"), 16).unwrap() != 0;
        }
    }
    probes
}

/// The same, from `ustat list --format csv`; every site must be traceable.
fn ustat_list(path: &str) -> BTreeMap<String, Counts> {
    let (code, out, err) = run_ustat(&["list", path, "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    let mut reader = csv::Reader::from_reader(out.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(
        &headers,
        vec![
            "file",
            "provider",
            "name",
            "sites",
            "semaphore",
            "arguments",
            "unsupported"
        ]
    );
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            assert_eq!(&record[6], "", "unsupported site in {record:?}");
            (
                format!("{}:{}", &record[1], &record[2]),
                Counts {
                    sites: record[3].parse().unwrap(),
                    semaphore: &record[4] == "yes",
                },
            )
        })
        .collect()
}

#[test]
fn python311_probes_match_readelf() {
    let expected = readelf(PYTHON);
    assert_eq!(
        expected.len(),
        8,
        "Debian's python3.11 has 8 probes: {expected:?}"
    );
    assert!(expected.values().all(|c| c.semaphore));
    assert_eq!(ustat_list(PYTHON), expected);
}

#[test]
fn libjvm_probes_match_readelf() {
    let expected = readelf(LIBJVM);
    assert!(expected.len() > 500, "{}", expected.len());
    // Multi-site probes: OpenJDK 17.0.15 has one gc__begin site; this one has three.
    assert_eq!(expected["hotspot_jni:DetachCurrentThread__return"].sites, 3);
    assert_eq!(ustat_list(LIBJVM), expected);
}

/// Every other HotSpot on the machine too (JDK 21+ has two gc__begin sites, `1@%dil` and `1@$1`).
#[test]
fn every_installed_libjvm_matches_readelf() {
    let mut checked = 0;
    for jdk in std::fs::read_dir("/usr/lib/jvm").unwrap() {
        let libjvm = jdk.unwrap().path().join("lib/server/libjvm.so");
        if libjvm.exists() {
            let path = libjvm.to_str().unwrap();
            assert_eq!(ustat_list(path), readelf(path), "{path}");
            checked += 1;
        }
    }
    assert!(checked >= 1);
}

#[test]
fn listing_a_process_covers_the_libraries_it_maps() {
    let fixture = support::fixtures::UsdtFixture::build();
    let mut program = fixture.start();
    assert_eq!(
        program.send(&format!("dlopen {}", fixture.library.display())),
        "ok"
    );
    let (code, out, err) = run_ustat(&["list", &program.pid().to_string(), "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    let files: std::collections::BTreeSet<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let expected: std::collections::BTreeSet<String> = [&fixture.program, &fixture.library]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(files, expected.iter().map(String::as_str).collect());
}
