//! Who is in the cluster: `cluster.conf` / `nacos.member.list` parsing, this node's own
//! address, and the member table with each peer's state (UP / SUSPICIOUS / DOWN) as the
//! periodic reports find it.
//!
//! A member is named by its main (HTTP) address `ip:port`, as in `cluster.conf`; its client
//! gRPC, cluster gRPC and Raft ports follow from that port (Raft's can be given explicitly
//! with `?raft_port=N`, as Nacos accepts in `nacos.member.list`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Nacos's default main port, for `cluster.conf` lines without one.
pub const DEFAULT_PORT: u16 = 8848;

/// Failed reports after which a member counts as DOWN (Nacos's `maxFailAccessCnt`).
pub const MAX_FAIL_ACCESS: u32 = 3;

/// A member's health as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NodeState {
    Starting,
    Up,
    Suspicious,
    Down,
    Isolation,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Starting => "STARTING",
            NodeState::Up => "UP",
            NodeState::Suspicious => "SUSPICIOUS",
            NodeState::Down => "DOWN",
            NodeState::Isolation => "ISOLATION",
        }
    }
}

/// One line entry of `cluster.conf` / `nacos.member.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAddr {
    pub ip: String,
    pub port: u16,
    /// `?raft_port=N`, when given.
    pub raft_port: Option<u16>,
}

impl MemberAddr {
    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }
}

/// Parse member addresses: one or more per line (separated by commas or blanks, as the
/// container image's `NACOS_SERVERS`), `#` starts a comment anywhere, blank lines are skipped,
/// the port defaults to 8848. A host may be an IP or a host name (resolved when connecting;
/// see [`super::resolve`]). Errors name the entry.
pub fn parse_members(text: &str) -> Result<Vec<MemberAddr>, String> {
    let mut out: Vec<MemberAddr> = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let entries = line
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty());
        for entry in entries {
            let member = parse_member(entry)?;
            if !out.iter().any(|m| m.address() == member.address()) {
                out.push(member);
            }
        }
    }
    Ok(out)
}

fn parse_member(entry: &str) -> Result<MemberAddr, String> {
    let (addr, query) = match entry.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (entry, None),
    };
    let bad = |why: &str| format!("bad cluster member '{entry}': {why}");
    let (ip, port) = if let Some(rest) = addr.strip_prefix('[') {
        // [v6]:port
        let (ip, tail) = rest.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        match tail.strip_prefix(':') {
            Some(p) => (ip, Some(p)),
            None if tail.is_empty() => (ip, None),
            None => return Err(bad("expected ':port' after ']'")),
        }
    } else {
        match addr.rsplit_once(':') {
            Some((ip, p)) if !ip.contains(':') => (ip, Some(p)),
            Some(_) => (addr, None),
            None => (addr, None),
        }
    };
    if ip.is_empty() || ip.contains(char::is_whitespace) {
        return Err(bad("no address"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port must be 1..65535"))?,
    };
    let mut raft_port = None;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        if let Some(v) = pair.strip_prefix("raft_port=") {
            raft_port = Some(
                v.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| bad("raft_port must be 1..65535"))?,
            );
        }
    }
    Ok(MemberAddr {
        ip: ip.to_string(),
        port,
        raft_port,
    })
}

/// Where the member list comes from: `<home>/conf/cluster.conf`, else `nacos.member.list`.
#[derive(Debug, Clone)]
pub struct MemberSource {
    pub file: PathBuf,
    pub fallback: Option<String>,
}

impl MemberSource {
    pub fn new(conf_dir: &Path, fallback: Option<String>) -> Self {
        Self {
            file: conf_dir.join("cluster.conf"),
            fallback,
        }
    }

    /// The current list. A missing or empty file falls back to `nacos.member.list`.
    pub fn read(&self) -> Result<Vec<MemberAddr>, String> {
        let from_file = match std::fs::read_to_string(&self.file) {
            Ok(text) => {
                parse_members(&text).map_err(|e| format!("{}: {e}", self.file.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", self.file.display())),
        };
        if !from_file.is_empty() {
            return Ok(from_file);
        }
        match &self.fallback {
            Some(list) => parse_members(list).map_err(|e| format!("nacos.member.list: {e}")),
            None => Ok(Vec::new()),
        }
    }

    /// A cheap fingerprint of the file, to notice edits without re-parsing every tick.
    pub fn stamp(&self) -> Option<(std::time::SystemTime, u64)> {
        let meta = std::fs::metadata(&self.file).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }
}

/// One member as this node sees it; serialises as Nacos's `Member` JSON.
#[derive(Debug, Clone)]
pub struct Member {
    pub ip: String,
    pub port: u16,
    pub raft_port: Option<u16>,
    pub state: NodeState,
    pub fail_access_cnt: u32,
    /// When this node last heard from it (ms since the epoch); 0 = never.
    pub last_refresh_ms: i64,
    /// The version it reported.
    pub version: String,
}

impl Member {
    fn new(addr: &MemberAddr, state: NodeState) -> Self {
        Member {
            ip: addr.ip.clone(),
            port: addr.port,
            raft_port: addr
                .raft_port
                .or_else(|| crate::foundation::settings::raft_port_of(addr.port)),
            state,
            fail_access_cnt: 0,
            last_refresh_ms: 0,
            version: String::new(),
        }
    }

    /// This node as it reports itself: UP, this build's version, heard from now.
    pub fn this_node(ip: String, port: u16, raft_port: Option<u16>) -> Self {
        Member {
            ip,
            port,
            raft_port,
            state: NodeState::Up,
            fail_access_cnt: 0,
            last_refresh_ms: nacos_core::now_millis(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn member_addr(&self) -> MemberAddr {
        MemberAddr {
            ip: self.ip.clone(),
            port: self.port,
            raft_port: self.raft_port,
        }
    }

    /// Nacos's `Member` JSON (what `/v1/core/cluster/nodes` lists and reports carry).
    pub fn to_json(&self) -> serde_json::Value {
        let mut extend = serde_json::Map::new();
        if let Some(raft) = self.raft_port {
            extend.insert("raftPort".into(), raft.to_string().into());
        }
        extend.insert("version".into(), self.version.clone().into());
        extend.insert("lastRefreshTime".into(), self.last_refresh_ms.into());
        extend.insert("supportGrayModel".into(), true.into());
        serde_json::json!({
            "ip": self.ip,
            "port": self.port,
            "state": self.state.as_str(),
            "address": self.address(),
            "extendInfo": extend,
            "failAccessCnt": self.fail_access_cnt,
            "abilities": {
                "remoteAbility": { "supportRemoteConnection": true, "grpcReportEnabled": true },
                "configAbility": { "supportRemoteMetrics": false },
                "namingAbility": { "supportJraft": false },
            },
            "grpcReportEnabled": true,
        })
    }
}

/// The member table. The list changes on reload; states change on reports.
#[derive(Debug)]
pub struct Members {
    self_address: String,
    table: RwLock<BTreeMap<String, Member>>,
    /// Bumped whenever the set of members changes (not on state changes).
    list_version: watch::Sender<u64>,
}

impl Members {
    /// The table for `list`, always including this node (added, with a warning, when the
    /// list does not name it, as Nacos does).
    pub fn new(self_addr: MemberAddr, list: Vec<MemberAddr>) -> Self {
        let self_address = self_addr.address();
        let members = Members {
            self_address,
            table: RwLock::new(BTreeMap::new()),
            list_version: watch::Sender::new(0),
        };
        members.replace(self_addr, list);
        members
    }

    pub fn self_address(&self) -> &str {
        &self.self_address
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Member>> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Member>> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Set the member list; members that stay keep their state. Returns whether the set of
    /// addresses changed.
    pub fn replace(&self, self_addr: MemberAddr, list: Vec<MemberAddr>) -> bool {
        let mut table = self.write();
        let before: Vec<String> = table.keys().cloned().collect();
        let mut next = BTreeMap::new();
        let listed_self = list.iter().any(|m| m.address() == self.self_address);
        if !listed_self {
            tracing::warn!(
                node = %self.self_address,
                "this node's address is not in the member list; adding it (set \
                 nacos.inetutils.ip-address to the address cluster.conf uses)"
            );
        }
        let all = list.into_iter().chain((!listed_self).then_some(self_addr));
        for addr in all {
            let key = addr.address();
            let member = match table.remove(&key) {
                Some(mut existing) => {
                    existing.raft_port = addr
                        .raft_port
                        .or_else(|| crate::foundation::settings::raft_port_of(addr.port));
                    existing
                }
                None if key == self.self_address => Member::new(&addr, NodeState::Up),
                // A peer is SUSPICIOUS until it is first heard from.
                None => Member::new(&addr, NodeState::Suspicious),
            };
            next.insert(key, member);
        }
        let changed = !before.iter().eq(next.keys());
        *table = next;
        drop(table);
        if changed {
            self.list_version.send_modify(|v| *v += 1);
        }
        changed
    }

    /// Every member, ordered by address, this node included.
    pub fn all(&self) -> Vec<Member> {
        self.read().values().cloned().collect()
    }

    /// Every member but this node.
    pub fn peers(&self) -> Vec<Member> {
        self.read()
            .values()
            .filter(|m| m.address() != self.self_address)
            .cloned()
            .collect()
    }

    pub fn get(&self, address: &str) -> Option<Member> {
        self.read().get(address).cloned()
    }

    pub fn contains(&self, address: &str) -> bool {
        self.read().contains_key(address)
    }

    /// Heard from `address` (a report it answered or sent): UP, failures forgotten.
    pub fn mark_up(&self, address: &str, version: Option<&str>) {
        let mut table = self.write();
        if let Some(m) = table.get_mut(address) {
            if m.state != NodeState::Up {
                tracing::info!(member = %address, "cluster member is UP");
            }
            m.state = NodeState::Up;
            m.fail_access_cnt = 0;
            m.last_refresh_ms = nacos_core::now_millis();
            if let Some(v) = version {
                m.version = v.to_string();
            }
        }
    }

    /// A report to `address` failed: SUSPICIOUS, then DOWN after [`MAX_FAIL_ACCESS`] in a
    /// row. Returns the new state.
    pub fn mark_failed(&self, address: &str) -> Option<NodeState> {
        let mut table = self.write();
        let m = table.get_mut(address)?;
        m.fail_access_cnt = m.fail_access_cnt.saturating_add(1);
        let next = if m.fail_access_cnt >= MAX_FAIL_ACCESS {
            NodeState::Down
        } else {
            NodeState::Suspicious
        };
        if next != m.state {
            tracing::warn!(member = %address, state = next.as_str(), failures = m.fail_access_cnt, "cluster member state changed");
        }
        m.state = next;
        Some(next)
    }

    /// Notified whenever the set of members changes.
    pub fn watch_list(&self) -> watch::Receiver<u64> {
        self.list_version.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_conf_forms() {
        let text = "# nodes\n\n10.0.0.1:8848\n10.0.0.2 # default port\n10.0.0.3:8850,10.0.0.4:8848?raft_port=9000\n10.0.0.1:8848\n";
        let got = parse_members(text).expect("valid");
        let addrs: Vec<String> = got.iter().map(MemberAddr::address).collect();
        assert_eq!(
            addrs,
            [
                "10.0.0.1:8848",
                "10.0.0.2:8848",
                "10.0.0.3:8850",
                "10.0.0.4:8848"
            ]
        );
        assert_eq!(got[3].raft_port, Some(9000));
        let err = parse_members("10.0.0.1:http").expect_err("bad port");
        assert!(err.contains("10.0.0.1:http"), "{err}");
        assert!(parse_members("10.0.0.1:0").is_err());
        let names =
            parse_members("nacos-0.nacos-headless:8848 nacos-1.nacos-headless\tlocalhost:9000")
                .expect("host names, blank separated");
        let addrs: Vec<String> = names.iter().map(MemberAddr::address).collect();
        assert_eq!(
            addrs,
            [
                "nacos-0.nacos-headless:8848",
                "nacos-1.nacos-headless:8848",
                "localhost:9000"
            ]
        );
    }

    #[test]
    fn states_follow_reports_and_self_is_added() {
        let me = parse_member("127.0.0.1:8848").expect("valid");
        let members = Members::new(me, parse_members("127.0.0.2:8848").expect("valid"));
        assert_eq!(members.all().len(), 2, "self added");
        let state = |a: &str| members.get(a).map(|m| m.state);
        assert_eq!(state("127.0.0.1:8848"), Some(NodeState::Up));
        assert_eq!(state("127.0.0.2:8848"), Some(NodeState::Suspicious));
        members.mark_up("127.0.0.2:8848", Some("1"));
        assert_eq!(state("127.0.0.2:8848"), Some(NodeState::Up));
        assert_eq!(
            members.mark_failed("127.0.0.2:8848"),
            Some(NodeState::Suspicious)
        );
        members.mark_failed("127.0.0.2:8848");
        assert_eq!(members.mark_failed("127.0.0.2:8848"), Some(NodeState::Down));
        members.mark_up("127.0.0.2:8848", None);
        assert_eq!(
            members.get("127.0.0.2:8848").map(|m| m.state),
            Some(NodeState::Up)
        );
    }
}
