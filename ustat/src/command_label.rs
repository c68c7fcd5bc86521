//! What tells runtime processes apart in the COMMAND column: not only `comm` (every JVM is
//! `java`), but what it runs, from its command line: a JVM's main class, jar or module, a
//! Python script or `-m` module, a Node, Ruby or PHP entry script.
//!
//! The command line belongs to the traced process (it can even rewrite it), so it is read
//! with a bound, and what comes out is sanitised and cut to a length.

/// At most this many bytes of `/proc/PID/cmdline` are read: enough for the options in front
/// of the entry point, however long the rest is.
pub const READ_LIMIT: u64 = 64 * 1024;

/// At most this many characters of a label; the table cuts it further to fit.
const MAX_CHARS: usize = 120;

/// `comm` and what the process runs: `java Workload`, `java app.jar`, `python3.11 -m
/// http.server`, `node server.js`. Only `comm` when the command line names nothing more
/// (or could not be read).
pub fn label(runtime: &str, comm: &str, args: &[String]) -> String {
    let target = match runtime {
        "jvm" => jvm(args),
        "python" => python(args),
        "node" => node(args),
        "ruby" => ruby(args),
        "php" => php(args),
        _ => first_operand(args, &[]),
    };
    let text = match target {
        Some(target) if !target.is_empty() => format!("{comm} {target}"),
        _ => comm.to_string(),
    };
    let clean = crate::sanitize::text(&text);
    if clean.chars().count() > MAX_CHARS {
        let mut cut: String = clean.chars().take(MAX_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        clean
    }
}

/// The last part of a path: a script is told by its file name.
fn file_name(path: &str) -> String {
    path.rsplit('/')
        .find(|part| !part.is_empty())
        .unwrap_or(path)
        .to_string()
}

/// The first argument after the program that is not an option, skipping the value of each
/// option in `with_value`.
fn first_operand(args: &[String], with_value: &[&str]) -> Option<String> {
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        if with_value.contains(&arg.as_str()) {
            rest.next();
        } else if arg == "--" {
            return rest.next().map(|a| file_name(a));
        } else if !arg.starts_with('-') {
            return Some(file_name(arg));
        }
    }
    None
}

/// `java [options] Main | -jar app.jar | -m module[/Main] | Main.java`: the main class as
/// written, the jar's file name, or the module.
fn jvm(args: &[String]) -> Option<String> {
    const WITH_VALUE: &[&str] = &[
        "-cp",
        "-classpath",
        "--class-path",
        "-p",
        "--module-path",
        "--upgrade-module-path",
        "--add-modules",
        "--add-opens",
        "--add-exports",
        "--add-reads",
        "--patch-module",
        "--limit-modules",
        "--enable-native-access",
        "--source",
    ];
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-jar" => return rest.next().map(|jar| file_name(jar)),
            "-m" | "--module" => return rest.next().cloned(),
            a if a.starts_with("--module=") => return Some(a["--module=".len()..].to_string()),
            a if WITH_VALUE.contains(&a) => {
                rest.next();
            }
            // Options, and `@argfiles` of options.
            a if a.starts_with('-') || a.starts_with('@') => {}
            main => return Some(main.to_string()),
        }
    }
    None
}

/// `python [options] script | -m module | -c code`.
fn python(args: &[String]) -> Option<String> {
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-m" => return rest.next().map(|module| format!("-m {module}")),
            "-c" => return Some("-c".into()),
            "-W" | "-X" | "-Q" => {
                rest.next();
            }
            "--" => return rest.next().map(|a| file_name(a)),
            "-" => return None,
            a if a.starts_with("-m") && !a.starts_with("--") => {
                return Some(format!("-m {}", &a[2..]));
            }
            a if a.starts_with("-c") && !a.starts_with("--") => return Some("-c".into()),
            a if a.starts_with('-') => {}
            script => return Some(file_name(script)),
        }
    }
    None
}

/// `node [options] script | -e code`.
fn node(args: &[String]) -> Option<String> {
    const WITH_VALUE: &[&str] = &[
        "-r",
        "--require",
        "--import",
        "--loader",
        "--experimental-loader",
        "--title",
        "--input-type",
        "-C",
        "--conditions",
        "--env-file",
    ];
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-e" | "--eval" | "-p" | "--print" => return Some(arg.clone()),
            a if WITH_VALUE.contains(&a) => {
                rest.next();
            }
            "--" => return rest.next().map(|a| file_name(a)),
            a if a.starts_with('-') => {}
            script => return Some(file_name(script)),
        }
    }
    None
}

/// `ruby [options] script | -e code`.
fn ruby(args: &[String]) -> Option<String> {
    if args.iter().skip(1).any(|a| a == "-e") {
        return Some("-e".into());
    }
    first_operand(args, &["-r", "-I", "-C", "-E", "-x"])
}

/// `php [options] [-f] script | -r code`; php-fpm names its pools in its own title.
fn php(args: &[String]) -> Option<String> {
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-f" => return rest.next().map(|a| file_name(a)),
            "-r" => return Some("-r".into()),
            "-c" | "-d" | "-z" | "-S" | "-t" => {
                rest.next();
            }
            a if a.starts_with('-') => {}
            script => return Some(file_name(script)),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(runtime: &str, comm: &str, args: &[&str]) -> String {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        label(runtime, comm, &args)
    }

    #[test]
    fn a_jvm_is_told_by_its_main_class_jar_or_module() {
        assert_eq!(
            of(
                "jvm",
                "java",
                &[
                    "java",
                    "-Xmx1g",
                    "-cp",
                    "/srv/lib/*:.",
                    "-XX:+UseG1GC",
                    "com.acme.Main",
                    "arg"
                ]
            ),
            "java com.acme.Main"
        );
        assert_eq!(
            of(
                "jvm",
                "java",
                &[
                    "/usr/bin/java",
                    "-Dx=y",
                    "-jar",
                    "/opt/app/shop.jar",
                    "--port",
                    "80"
                ]
            ),
            "java shop.jar"
        );
        assert_eq!(
            of(
                "jvm",
                "java",
                &["java", "--module-path", "mods", "-m", "acme.app/acme.Main"]
            ),
            "java acme.app/acme.Main"
        );
        assert_eq!(of("jvm", "java", &["java", "@opts", "Main"]), "java Main");
        assert_eq!(of("jvm", "java", &["java", "-version"]), "java");
        assert_eq!(of("jvm", "java", &[]), "java");
    }

    #[test]
    fn python_is_told_by_its_script_or_module() {
        assert_eq!(
            of(
                "python",
                "python3.11",
                &[
                    "python3",
                    "-u",
                    "-W",
                    "ignore",
                    "/srv/app/manage.py",
                    "runserver"
                ]
            ),
            "python3.11 manage.py"
        );
        assert_eq!(
            of(
                "python",
                "python3",
                &["python3", "-m", "http.server", "8000"]
            ),
            "python3 -m http.server"
        );
        assert_eq!(
            of("python", "python3", &["python3", "-mhttp.server"]),
            "python3 -m http.server"
        );
        assert_eq!(
            of("python", "python3", &["python3", "-c", "import x"]),
            "python3 -c"
        );
        assert_eq!(of("python", "python3", &["python3"]), "python3");
    }

    #[test]
    fn node_ruby_and_php_are_told_by_their_entry_script() {
        assert_eq!(
            of(
                "node",
                "node",
                &[
                    "node",
                    "--max-old-space-size=512",
                    "-r",
                    "dotenv/config",
                    "dist/server.js"
                ]
            ),
            "node server.js"
        );
        assert_eq!(of("node", "node", &["node", "-e", "while(1){}"]), "node -e");
        assert_eq!(
            of("ruby", "ruby", &["ruby", "-I", "lib", "bin/worker.rb"]),
            "ruby worker.rb"
        );
        assert_eq!(
            of(
                "php",
                "php",
                &["php", "-d", "x=1", "-f", "/var/www/cron.php"]
            ),
            "php cron.php"
        );
    }

    #[test]
    fn what_the_process_wrote_is_sanitised_and_bounded() {
        assert_eq!(
            of("python", "python3", &["python3", "evil\x1b[2J.py"]),
            "python3 evil?[2J.py"
        );
        let long = "x".repeat(1000);
        let label = of("jvm", "java", &["java", &long]);
        assert_eq!(label.chars().count(), MAX_CHARS);
        assert!(label.ends_with('…'));
    }
}
