//! `--methods` under load: many distinct methods must neither disturb GC pause percentiles
//! (method durations have their own kernel map) nor leave rows without names (a name lost to
//! a full ring buffer is asked for again).

mod support;

use std::{
    collections::{BTreeSet, HashMap},
    ffi::OsStr,
    fmt::Write as _,
    io::{Read as _, Seek as _, SeekFrom},
    path::Path,
    process::Command,
};

use support::{
    Driven, csv_ustat,
    interpreters::{DEBIAN_PYTHON, node, python},
    jvm::{BASE_FLAGS, java},
    poll, read_csv, stop, sum_for,
};

/// A CSV cell in milliseconds with three decimals (`12.345`) as microseconds, so cells
/// compare exactly.
fn micros(row: &HashMap<String, String>, column: &str) -> u64 {
    let cell = &row[column];
    let (whole, fraction) = cell
        .split_once('.')
        .unwrap_or_else(|| panic!("{column} = {cell:?} in {row:?}"));
    assert_eq!(fraction.len(), 3, "{column} = {cell:?}");
    whole.parse::<u64>().unwrap() * 1_000 + fraction.parse::<u64>().unwrap()
}

/// Every row with GCs has p99 <= max <= total.
fn assert_pauses_ordered(rows: &[HashMap<String, String>], pid: u32) {
    let with_gcs: Vec<_> = rows
        .iter()
        .filter(|r| r["pid"] == pid.to_string() && r["gc_count"] != "0")
        .collect();
    assert!(!with_gcs.is_empty(), "no row of {pid} has GCs");
    for row in with_gcs {
        let (p99, max, total) = (
            micros(row, "gc_pause_ms_p99"),
            micros(row, "gc_pause_ms_max"),
            micros(row, "gc_pause_ms_total"),
        );
        assert!(
            p99 <= max && max <= total,
            "p99 {p99} max {max} total {total}: {row:?}"
        );
    }
}

#[test]
fn gc_percentiles_stay_ordered_while_methods_are_timed() {
    const ROUNDS: u64 = 3;
    const PYTHON_GCS: u64 = 5;
    const FUNCTIONS: u64 = 20_000;
    let mut python = python(Path::new(DEBIAN_PYTHON));
    assert_eq!(python.send(&format!("funcs {FUNCTIONS}")), "ok", "warm-up");
    let mut node = node();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("ustat.csv");
    let methods = dir.path().join("methods.csv");
    let pids = format!("{},{}", python.pid(), node.pid());
    let ustat = csv_ustat(
        &csv,
        &[
            OsStr::new("-p"),
            OsStr::new(&pids),
            OsStr::new("--methods"),
            methods.as_os_str(),
        ],
    );
    let mut rows_so_far = Tail::open(&csv);
    let mut seen = 0;
    for _ in 0..ROUNDS {
        assert_eq!(python.send(&format!("funcs {FUNCTIONS}")), "ok");
        assert_eq!(python.send(&format!("gc {PYTHON_GCS}")), "ok");
        // One GC, then two more rows (intervals) before the next: intervals with a single
        // GC, where a histogram's max is most easily above the exact total.
        assert_eq!(node.send("gc 1"), "ok");
        let wanted = seen + 4;
        poll("two more intervals", || {
            seen += rows_so_far.rows().len();
            (seen >= wanted).then_some(())
        });
    }
    stop(ustat);

    let rows = read_csv(&csv);
    assert_eq!(
        sum_for(&rows, python.pid(), "gc_count"),
        ROUNDS * PYTHON_GCS,
        "{rows:?}"
    );
    assert_eq!(sum_for(&rows, node.pid(), "gc_major"), ROUNDS, "{rows:?}");
    assert_pauses_ordered(&rows, python.pid());
    assert_pauses_ordered(&rows, node.pid());
    let method_rows = read_csv(&methods);
    assert!(
        method_rows.iter().all(|r| r["method"] != "?"),
        "a method row without a name"
    );
    let python_calls: u64 = method_rows
        .iter()
        .filter(|r| r["pid"] == python.pid().to_string())
        .map(|r| r["calls"].parse::<u64>().unwrap())
        .sum();
    assert_eq!(python_calls, sum_for(&rows, python.pid(), "method_calls"));
    assert_eq!(
        python_calls,
        ROUNDS * FUNCTIONS,
        "every generated function, each round"
    );
}

/// Classes and methods of the generated JVM program.
const CLASSES: usize = 100;
const METHODS_PER_CLASS: usize = 1_000;

/// Writes `Gen0.java` ... and `Many.java`: class GenK has methods mK_0 ... and all(), which
/// calls each of them once; Many answers `round` (every class's all() once) and `spin` (a
/// thread doing rounds for ever).
fn generate_program(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut round = String::new();
    for class in 0..CLASSES {
        let mut source = format!("public class Gen{class} {{\n    static long sink;\n");
        for method in 0..METHODS_PER_CLASS {
            writeln!(source, "    static void m{class}_{method}() {{ sink++; }}").unwrap();
        }
        source.push_str("    public static void all() {\n");
        for method in 0..METHODS_PER_CLASS {
            writeln!(source, "        m{class}_{method}();").unwrap();
        }
        source.push_str("    }\n}\n");
        let path = dir.join(format!("Gen{class}.java"));
        std::fs::write(&path, source).unwrap();
        files.push(path);
        writeln!(round, "        Gen{class}.all();").unwrap();
    }
    let many = format!(
        r#"import java.io.BufferedReader;
import java.io.InputStreamReader;

public class Many {{
    static void round() {{
{round}    }}

    public static void main(String[] args) throws Exception {{
        System.out.println("ready");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String line; (line = in.readLine()) != null; ) {{
            switch (line.trim()) {{
                case "round":
                    round();
                    break;
                case "spin":
                    Thread spinner = new Thread(() -> {{
                        try {{
                            while (true) {{
                                round();
                                Thread.sleep(10);
                            }}
                        }} catch (InterruptedException e) {{
                            // daemon thread: ends with the JVM
                        }}
                    }});
                    spinner.setDaemon(true);
                    spinner.start();
                    break;
                default:
                    System.out.println("error unknown command");
                    continue;
            }}
            System.out.println("ok");
        }}
    }}
}}
"#
    );
    let path = dir.join("Many.java");
    std::fs::write(&path, many).unwrap();
    files.push(path);
    files
}

/// Like `support::poll`, with a deadline for work that takes minutes on a busy machine.
fn poll_longer<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Reads the rows a growing CSV file gained since the last call (complete lines only).
struct Tail {
    file: std::fs::File,
    offset: u64,
    header: Option<csv::StringRecord>,
    partial: Vec<u8>,
}

impl Tail {
    fn open(path: &Path) -> Self {
        Self {
            file: std::fs::File::open(path).unwrap(),
            offset: 0,
            header: None,
            partial: Vec::new(),
        }
    }

    /// The new complete rows, each as (column, cell) pairs.
    fn rows(&mut self) -> Vec<HashMap<String, String>> {
        self.file.seek(SeekFrom::Start(self.offset)).unwrap();
        let mut bytes = Vec::new();
        self.file.read_to_end(&mut bytes).unwrap();
        self.offset += bytes.len() as u64;
        self.partial.extend_from_slice(&bytes);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(complete.as_slice());
        let mut out = Vec::new();
        for record in reader.records() {
            let record = record.unwrap();
            match &self.header {
                None => self.header = Some(record),
                Some(header) => out.push(
                    header
                        .iter()
                        .zip(record.iter())
                        .map(|(h, v)| (h.to_string(), v.to_string()))
                        .collect(),
                ),
            }
        }
        out
    }
}

#[test]
fn a_jvm_with_100k_methods_gets_every_name() {
    let dir = tempfile::Builder::new()
        .prefix("ustat-many-")
        .tempdir()
        .unwrap();
    let sources = generate_program(dir.path());
    let out = Command::new("javac")
        .arg("-d")
        .arg(dir.path())
        .args(&sources)
        .output()
        .expect("run javac (scripts/setup installs openjdk-17-jdk-headless)");
    assert!(
        out.status.success(),
        "javac: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut jvm = Driven::spawn(
        Command::new(java())
            .args(BASE_FLAGS)
            .arg("-XX:+ExtendedDTraceProbes")
            .arg("-cp")
            .arg(dir.path())
            .arg("Many"),
    );
    // Loads and links every class before ustat attaches.
    assert_eq!(jvm.send("round"), "ok");
    let expected: BTreeSet<String> = (0..CLASSES)
        .flat_map(|class| {
            (0..METHODS_PER_CLASS)
                .map(move |method| format!("Gen{class}.m{class}_{method}()"))
                .chain([format!("Gen{class}.all()")])
        })
        .collect();
    assert_eq!(expected.len(), CLASSES * (METHODS_PER_CLASS + 1));

    let csv = dir.path().join("ustat.csv");
    let methods = dir.path().join("methods.csv");
    let pid = jvm.pid().to_string();
    let ustat = csv_ustat(
        &csv,
        &[
            OsStr::new("-p"),
            OsStr::new(&pid),
            OsStr::new("--methods"),
            methods.as_os_str(),
        ],
    );
    assert_eq!(jvm.send("spin"), "ok");
    let mut tail = Tail::open(&methods);
    let mut named = BTreeSet::new();
    let mut pending_rows = 0u64;
    // Every new method costs the kernel map inserts that are slow on a loaded machine (see
    // the report): this wait is longer than support's.
    poll_longer("a row for every generated method", || {
        for row in tail.rows() {
            let method = &row["method"];
            assert_ne!(method, "?", "{row:?}");
            if method.starts_with("(name pending") {
                pending_rows += 1;
            } else if method.starts_with("Gen") {
                named.insert(method.clone());
            }
        }
        (named.len() == expected.len()).then_some(())
    });
    stop(ustat);
    for row in tail.rows() {
        assert_ne!(row["method"], "?", "{row:?}");
        if row["method"].starts_with("Gen") {
            named.insert(row["method"].clone());
        }
    }
    assert_eq!(
        named, expected,
        "the methods the program called, each named"
    );

    let rows = read_csv(&csv);
    let longest = rows
        .iter()
        .map(|r| r["interval_s"].parse::<f64>().unwrap())
        .fold(0.0, f64::max);
    let lost: u64 = rows
        .iter()
        .map(|r| r["lost_events"].parse::<u64>().unwrap())
        .sum();
    eprintln!(
        "{} intervals, the longest {longest:.3} s (0.5 s asked); {pending_rows} rows had their \
         name pending; {lost} events lost",
        rows.len()
    );
}
