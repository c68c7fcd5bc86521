//! Which container a process runs in, from its cgroup path (`/proc/PID/cgroup`): the id a
//! container runtime puts in the cgroup it makes (`docker-<id>.scope`, `/docker/<id>`,
//! `cri-containerd-<id>.scope`, `crio-<id>`, `libpod-<id>`), shortened to 12 digits as
//! `docker ps` shows it. A process outside such a cgroup has none.
//!
//! The path is only read and shown as a label: nothing ustat opens depends on it. A user
//! with a delegated cgroup subtree can name a cgroup like a container; the label then says
//! what the path says, no more.

use std::io::Read as _;

/// The length of a container id (hex digits of a SHA-256).
const ID_DIGITS: usize = 64;
/// How much of the id the label keeps, as `docker ps` does.
const SHORT_DIGITS: usize = 12;
/// A cgroup file is a few lines; anything longer is not read further.
const MAX_READ: u64 = 16 * 1024;

/// The container of process `pid`, if its cgroup says it is in one.
pub fn of_process(pid: u32) -> Option<String> {
    let mut text = String::new();
    std::fs::File::open(format!("/proc/{pid}/cgroup"))
        .ok()?
        .take(MAX_READ)
        .read_to_string(&mut text)
        .ok()?;
    from_cgroup_file(&text)
}

/// The container id in a `/proc/PID/cgroup` text: the deepest path component that holds a
/// 64-digit hex id, of the first line that has one (cgroup v2 has one line, `0::/path`).
pub fn from_cgroup_file(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        path.rsplit('/').find_map(id_in_component)
    })
}

/// A 64-digit hex run that is the whole component or is delimited by `-`, `.` or `:`
/// (`docker-<id>.scope`), shortened.
fn id_in_component(component: &str) -> Option<String> {
    component
        .split(['-', '.', ':'])
        .find(|part| part.len() == ID_DIGITS && part.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|id| id[..SHORT_DIGITS].to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e2b1c9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

    #[test]
    fn container_runtimes_cgroup_paths() {
        for text in [
            format!("0::/system.slice/docker-{ID}.scope\n"),
            format!("0::/docker/{ID}\n"),
            format!("0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-{ID}.scope\n"),
            format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
            format!("12:pids:/docker/{ID}\n11:memory:/docker/{ID}\n"),
        ] {
            assert_eq!(
                from_cgroup_file(&text).as_deref(),
                Some("3f4e2b1c9a8d"),
                "{text}"
            );
        }
    }

    #[test]
    fn hosts_and_look_alikes_have_no_container() {
        for text in [
            "0::/user.slice/user-1000.slice/session-2.scope\n",
            "0::/system.slice/ssh.service\n",
            "0::/\n",
            "",
            "garbage",
            // 63 and 65 digits, and a non-hex run of 64.
            &format!("0::/docker/{}\n", &ID[1..]),
            &format!("0::/docker/{ID}a\n"),
            &format!("0::/docker/{}\n", "z".repeat(64)),
        ] {
            assert_eq!(from_cgroup_file(text), None, "{text}");
        }
    }
}
