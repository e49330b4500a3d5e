//! Processes as `/proc` shows them: a process's children and descendants,
//! the environment mark a Lambda instance's processes carry, the process
//! that owns a loopback TCP connection, and ending the strays a subreaper
//! inherits.
//!
//! The server (and the supervisor) are child subreapers
//! ([`crate::os::become_child_subreaper`]): whatever a function starts and
//! leaves behind, even in a session of its own, becomes their child when
//! its parent exits, instead of `init`'s. [`end_strays`] then kills those
//! that belong to no live instance, with everything below them, and reaps
//! them; a process that is not an orphan is found as a descendant of one.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;

/// The environment variable that marks every process of a Lambda instance
/// (inherited by whatever it starts): `FLEXILIB_INSTANCE=<server pid>.<n>`.
pub const INSTANCE_MARK: &str = "FLEXILIB_INSTANCE";

/// One process: its parent, and whether it has exited (a zombie).
#[derive(Debug, Clone, Copy)]
pub struct Process {
    /// Parent process id.
    pub ppid: u32,
    /// Exited, not yet reaped.
    pub zombie: bool,
}

/// Every process now, by pid (those that vanish while being read are left out).
pub fn snapshot() -> HashMap<u32, Process> {
    let mut table = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return table;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(process) = read_stat(pid) {
            table.insert(pid, process);
        }
    }
    table
}

/// `/proc/PID/stat`: the state and the parent (after the command's `)`,
/// which may itself hold spaces and parentheses).
fn read_stat(pid: u32) -> Option<Process> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Process {
        ppid,
        zombie: state == "Z" || state == "X",
    })
}

/// The descendants of `root` in `table` (not `root` itself).
pub fn descendants(table: &HashMap<u32, Process>, root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, process) in table {
        children.entry(process.ppid).or_default().push(*pid);
    }
    let mut found = Vec::new();
    let mut next = vec![root];
    while let Some(pid) = next.pop() {
        for child in children.get(&pid).into_iter().flatten() {
            // A cycle cannot happen in a consistent table; a torn one may.
            if *child != root && !found.contains(child) {
                found.push(*child);
                next.push(*child);
            }
        }
    }
    found
}

/// The instance mark in `pid`'s environment, if any.
pub fn instance_mark(pid: u32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{INSTANCE_MARK}=");
    environ
        .split(|byte| *byte == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .map(|mark| String::from_utf8_lossy(mark).into_owned())
}

/// True while `pid` runs this process's own executable: a child forked by
/// this process that has not reached `exec` yet (its environment is still
/// this process's, so it carries no instance mark).
pub fn runs_own_image(pid: u32) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let (Ok(own), Ok(its)) = (
        std::fs::metadata("/proc/self/exe"),
        std::fs::metadata(format!("/proc/{pid}/exe")),
    ) else {
        return false;
    };
    own.dev() == its.dev() && own.ino() == its.ino()
}

/// Kills this process's children that `keep` does not claim (with every
/// descendant of theirs), and reaps the children that have exited, except
/// `managed` ones (reaped by whoever started them). Returns how many
/// strays are left to reap or were killed now: call again while non-zero.
pub fn end_strays(managed: &dyn Fn(u32) -> bool, keep: &dyn Fn(u32) -> bool) -> usize {
    let me = std::process::id();
    let table = snapshot();
    let mut pending = 0;
    for (pid, process) in &table {
        if process.ppid != me || managed(*pid) {
            continue;
        }
        if process.zombie {
            if !crate::os::reap_exited_child(*pid) {
                pending += 1;
            }
            continue;
        }
        if keep(*pid) {
            continue;
        }
        // Below first, so nothing is orphaned again on its way out.
        for below in descendants(&table, *pid) {
            crate::os::kill_process(below);
        }
        crate::os::kill_process(*pid);
        tracing::debug!(pid, "stray process of an ended instance killed");
        pending += 1;
    }
    pending
}

/// The inode of the socket that connected from `peer` to `local` (a
/// loopback IPv4 connection to one of this process's listeners), from
/// `/proc/net/tcp`.
pub fn connecting_socket_inode(peer: SocketAddr, local: SocketAddr) -> Option<u64> {
    let (SocketAddr::V4(peer), SocketAddr::V4(local)) = (peer, local) else {
        return None;
    };
    // The kernel prints an IPv4 address as the 32-bit value in memory
    // (network order) read as a native integer, and the port in host order.
    let hex = |address: &std::net::SocketAddrV4| {
        format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(address.ip().octets()),
            address.port()
        )
    };
    let (want_local, want_remote) = (hex(&peer), hex(&local));
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(1) == Some(&want_local.as_str())
            && fields.get(2) == Some(&want_remote.as_str()))
        .then(|| fields.get(9)?.parse().ok())
        .flatten()
    })
}

/// True if process `pid` holds the socket with inode `inode` open.
pub fn holds_socket(pid: u32, inode: u64) -> bool {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    entries.flatten().any(|entry| {
        // `stat` through the link gives the socket's inode without parsing
        // `socket:[N]`.
        std::fs::metadata(entry.path()).is_ok_and(|meta| meta.ino() == inode)
            && std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_follow_parents() {
        let table: HashMap<u32, Process> = [(2, 1), (3, 2), (4, 3), (5, 1), (6, 99)]
            .into_iter()
            .map(|(pid, ppid)| {
                (
                    pid,
                    Process {
                        ppid,
                        zombie: false,
                    },
                )
            })
            .collect();
        let mut below = descendants(&table, 2);
        below.sort_unstable();
        assert_eq!(below, vec![3, 4]);
        assert!(descendants(&table, 6).is_empty());
    }

    #[test]
    fn finds_the_process_holding_a_loopback_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        let inode = connecting_socket_inode(peer, listener.local_addr().unwrap());
        let inode = inode.expect("the connection is in /proc/net/tcp");
        assert!(holds_socket(std::process::id(), inode));
        drop(client);
    }
}
