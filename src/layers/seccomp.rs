//! The seccomp layer: a deny list (EPERM, not kill: programs probe), clone3
//! answered with ENOSYS so libc falls back to clone (whose flags we can see),
//! and a hand-written guard in front that refuses what a deny list cannot
//! foresee: x32 syscall numbers (seccompiler has no x32 check) and syscalls
//! newer than this list (a future mount-like API is denied until reviewed:
//! Flatpak's CVE-2021-41133 was a new mount API slipping past a deny list).
//! Foreign architectures (i386 `int 0x80`) are killed by the arch check.

use std::collections::BTreeMap;

use nix::libc;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op,
    SeccompCondition as Cond, SeccompFilter, SeccompRule, TargetArch,
};

/// The newest syscall number this list was reviewed against (file_setattr,
/// Linux 6.17; numbers are shared by all architectures since 424).
pub const NEWEST_REVIEWED_SYSCALL: u32 = 469;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// Syscalls newer than the libc crate's tables (unified numbering).
const SYS_OPEN_TREE_ATTR: i64 = 467;

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// When a denied syscall is refused.
#[derive(Debug, Clone, Copy)]
enum When {
    Always,
    /// clone/unshare with any namespace flag in argument 0.
    NamespaceFlags,
    /// ioctl TIOCSTI / TIOCLINUX, compared as 32-bit values (CVE-2019-10063).
    TerminalInjection,
    /// personality other than the default (or the query).
    NonDefaultPersonality,
}

/// The default deny list: name (as in `seccomp.allow`), number, condition.
fn deny_list() -> Vec<(&'static str, i64, When)> {
    use When::*;
    #[allow(unused_mut)]
    let mut list = vec![
        ("kexec_load", libc::SYS_kexec_load, Always),
        ("kexec_file_load", libc::SYS_kexec_file_load, Always),
        ("init_module", libc::SYS_init_module, Always),
        ("finit_module", libc::SYS_finit_module, Always),
        ("delete_module", libc::SYS_delete_module, Always),
        ("reboot", libc::SYS_reboot, Always),
        ("swapon", libc::SYS_swapon, Always),
        ("swapoff", libc::SYS_swapoff, Always),
        ("syslog", libc::SYS_syslog, Always),
        ("acct", libc::SYS_acct, Always),
        ("mount", libc::SYS_mount, Always),
        ("umount2", libc::SYS_umount2, Always),
        ("pivot_root", libc::SYS_pivot_root, Always),
        ("chroot", libc::SYS_chroot, Always),
        ("move_mount", libc::SYS_move_mount, Always),
        ("open_tree", libc::SYS_open_tree, Always),
        ("open_tree_attr", SYS_OPEN_TREE_ATTR, Always),
        ("fsopen", libc::SYS_fsopen, Always),
        ("fsmount", libc::SYS_fsmount, Always),
        ("fsconfig", libc::SYS_fsconfig, Always),
        ("fspick", libc::SYS_fspick, Always),
        ("mount_setattr", libc::SYS_mount_setattr, Always),
        ("unshare", libc::SYS_unshare, NamespaceFlags),
        ("clone", libc::SYS_clone, NamespaceFlags),
        ("setns", libc::SYS_setns, Always),
        ("keyctl", libc::SYS_keyctl, Always),
        ("add_key", libc::SYS_add_key, Always),
        ("request_key", libc::SYS_request_key, Always),
        ("bpf", libc::SYS_bpf, Always),
        ("perf_event_open", libc::SYS_perf_event_open, Always),
        ("userfaultfd", libc::SYS_userfaultfd, Always),
        ("io_uring_setup", libc::SYS_io_uring_setup, Always),
        ("io_uring_enter", libc::SYS_io_uring_enter, Always),
        ("io_uring_register", libc::SYS_io_uring_register, Always),
        ("open_by_handle_at", libc::SYS_open_by_handle_at, Always),
        ("name_to_handle_at", libc::SYS_name_to_handle_at, Always),
        ("personality", libc::SYS_personality, NonDefaultPersonality),
        ("ioctl", libc::SYS_ioctl, TerminalInjection),
        ("quotactl", libc::SYS_quotactl, Always),
        ("quotactl_fd", libc::SYS_quotactl_fd, Always),
        ("settimeofday", libc::SYS_settimeofday, Always),
        ("clock_settime", libc::SYS_clock_settime, Always),
        ("clock_adjtime", libc::SYS_clock_adjtime, Always),
        ("adjtimex", libc::SYS_adjtimex, Always),
        ("vhangup", libc::SYS_vhangup, Always),
        ("nfsservctl", libc::SYS_nfsservctl, Always),
        ("lookup_dcookie", libc::SYS_lookup_dcookie, Always),
    ];
    #[cfg(target_arch = "x86_64")]
    list.extend([
        ("iopl", libc::SYS_iopl, Always),
        ("ioperm", libc::SYS_ioperm, Always),
        ("uselib", libc::SYS_uselib, Always),
        ("_sysctl", libc::SYS__sysctl, Always),
    ]);
    list
}

/// Names that `seccomp.allow` accepts. `ioctl` is not among them: terminal
/// injection is never allowed back.
pub fn deniable_names() -> Vec<&'static str> {
    deny_list()
        .into_iter()
        .map(|(n, _, _)| n)
        .filter(|n| *n != "ioctl")
        .collect()
}

pub fn is_deniable(name: &str) -> bool {
    deniable_names().contains(&name)
}

const NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];
/// CLONE_NEWTIME shares its bit with clone's exit-signal byte, so it is
/// checked for unshare only.
const CLONE_NEWTIME: u64 = 0x80;

fn cond(arg: u8, len: Len, op: Op, value: u64) -> Cond {
    Cond::new(arg, len, op, value).expect("argument index below 6")
}

/// A rule: it matches (and the call is refused) when all `conds` hold.
fn rule(conds: Vec<Cond>) -> SeccompRule {
    SeccompRule::new(conds).expect("non-empty conditions")
}

fn rules_for(name: &str, when: When) -> Vec<SeccompRule> {
    match when {
        When::Always => Vec::new(),
        When::NamespaceFlags => {
            let mut flags = NAMESPACE_FLAGS.to_vec();
            if name == "unshare" {
                flags.push(CLONE_NEWTIME);
            }
            flags
                .into_iter()
                .map(|f| rule(vec![cond(0, Len::Qword, Op::MaskedEq(f), f)]))
                .collect()
        }
        // The request type differs between architectures (c_ulong or c_int).
        #[allow(clippy::unnecessary_cast)]
        When::TerminalInjection => [libc::TIOCSTI as u64, libc::TIOCLINUX as u64]
            .into_iter()
            .map(|req| rule(vec![cond(1, Len::Dword, Op::Eq, req)]))
            .collect(),
        When::NonDefaultPersonality => vec![rule(vec![
            cond(0, Len::Dword, Op::Ne, 0),
            cond(0, Len::Dword, Op::Ne, 0xffff_ffff),
        ])],
    }
}

/// What the filter should additionally refuse, where a missing layer would
/// leave something of the host in reach (decided by `plan::compensation`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extra {
    /// `socket()` only for these families, EPERM for the others; `None`: any.
    /// Network `none`: a network namespace confines inet and netlink, not
    /// AF_VSOCK (the hypervisor, WSL's Windows side) and the like; without a
    /// namespace, nothing at all but unix sockets.
    pub socket_families: Option<Vec<i32>>,
    /// Refuse creating unix sockets: `socket(AF_UNIX)`, and
    /// `socketpair(AF_UNIX, SOCK_DGRAM)` (a datagram socket can still
    /// `sendto()` or `connect()` any path). Without a mount namespace the
    /// host's sockets are all there, and Landlock before ABI 9 does not
    /// mediate `connect()` on them. `socketpair` of streams stays allowed.
    pub deny_unix_sockets: bool,
    /// Refuse System V IPC (shm, msg, sem): without an IPC namespace the
    /// host's objects are addressable by key or id, and Landlock does not
    /// cover them.
    pub deny_sysv_ipc: bool,
    /// Refuse every AF_INET/AF_INET6 socket but plain TCP, and AF_PACKET
    /// (network `allow` without a network namespace: Landlock confines TCP
    /// to the proxy's port, and nothing may go around it by UDP, raw
    /// sockets, SCTP or MPTCP).
    pub inet_stream_only: bool,
    /// Refuse prlimit64 on any process but the caller (pid argument not 0).
    /// Without a pid namespace every process of the user is in reach, and
    /// Landlock does not scope prlimit: the command could lower the limits
    /// of the user's other processes (RLIMIT_CPU 1 kills the editor).
    pub own_rlimits_only: bool,
}

impl Extra {
    /// Short names of what is refused because namespaces are missing, for
    /// the start line and the report (network `none` says the rest).
    pub fn describe(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.deny_unix_sockets {
            out.push("unix-sockets");
        }
        if self.deny_sysv_ipc {
            out.push("sysv-ipc");
        }
        out
    }
}

/// socket(2) calls to refuse when only TCP may leave: a rule matches (and
/// so is refused) when every one of its conditions holds.
fn stream_only_rules() -> Vec<SeccompRule> {
    let mut rules = Vec::new();
    for af in [libc::AF_INET, libc::AF_INET6] {
        let domain = || cond(0, Len::Dword, Op::Eq, af as u64);
        // Every type but SOCK_STREAM (the filter has no "masked not equal").
        for kind in (0..=SOCK_TYPE_MASK).filter(|k| *k != libc::SOCK_STREAM as u64) {
            rules.push(vec![
                domain(),
                cond(1, Len::Dword, Op::MaskedEq(SOCK_TYPE_MASK), kind),
            ]);
        }
        rules.push(vec![
            domain(),
            cond(2, Len::Dword, Op::Ne, 0),
            cond(2, Len::Dword, Op::Ne, libc::IPPROTO_TCP as u64),
        ]);
    }
    rules.push(vec![cond(0, Len::Dword, Op::Eq, libc::AF_PACKET as u64)]);
    rules.into_iter().map(rule).collect()
}

/// System V IPC: every call that names an object of the IPC namespace.
fn sysv_ipc_syscalls() -> Vec<i64> {
    vec![
        libc::SYS_shmget,
        libc::SYS_shmat,
        libc::SYS_shmctl,
        libc::SYS_msgget,
        libc::SYS_msgsnd,
        libc::SYS_msgrcv,
        libc::SYS_msgctl,
        libc::SYS_semget,
        libc::SYS_semop,
        libc::SYS_semtimedop,
        libc::SYS_semctl,
    ]
}

/// Mask of the socket type in socket()/socketpair()'s type argument (the
/// rest are SOCK_CLOEXEC / SOCK_NONBLOCK).
const SOCK_TYPE_MASK: u64 = 0xf;

/// The rules that make `socket()` fail, per `extra`; None: no rule.
fn socket_rules(extra: &Extra) -> Option<Vec<SeccompRule>> {
    let mut rules = Vec::new();
    if let Some(allowed) = &extra.socket_families {
        if allowed.is_empty() {
            // No condition: every socket() is refused.
            return Some(Vec::new());
        }
        // One rule, its conditions ANDed: a family that is none of these.
        rules.push(rule(
            allowed
                .iter()
                .map(|&af| cond(0, Len::Dword, Op::Ne, af as u64))
                .collect(),
        ));
    }
    if extra.inet_stream_only {
        rules.extend(stream_only_rules());
    }
    if extra.deny_unix_sockets {
        rules.push(rule(vec![cond(
            0,
            Len::Dword,
            Op::Eq,
            libc::AF_UNIX as u64,
        )]));
    }
    (!rules.is_empty()).then_some(rules)
}

/// Build the filters, in the order they are installed.
pub fn build(allow_back: &[String], extra: &Extra) -> Result<Vec<BpfProgram>, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (name, nr, when) in deny_list() {
        if allow_back.iter().any(|a| a == name) {
            continue;
        }
        rules.insert(nr, rules_for(name, when));
    }
    if let Some(socket) = socket_rules(extra) {
        rules.insert(libc::SYS_socket, socket);
    }
    if extra.deny_unix_sockets {
        let dgram_pair = rule(vec![
            cond(0, Len::Dword, Op::Eq, libc::AF_UNIX as u64),
            cond(
                1,
                Len::Dword,
                Op::MaskedEq(SOCK_TYPE_MASK),
                libc::SOCK_DGRAM as u64,
            ),
        ]);
        rules.insert(libc::SYS_socketpair, vec![dgram_pair]);
    }
    if extra.deny_sysv_ipc {
        for nr in sysv_ipc_syscalls() {
            rules.insert(nr, Vec::new());
        }
    }
    if extra.own_rlimits_only {
        // glibc's setrlimit/getrlimit and Go's pass 0 (this process).
        let other = rule(vec![cond(0, Len::Dword, Op::Ne, 0)]);
        rules.insert(libc::SYS_prlimit64, vec![other]);
    }
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        ARCH,
    )
    .map_err(|e| format!("building the seccomp deny filter: {e}"))?;
    let deny =
        BpfProgram::try_from(deny).map_err(|e| format!("compiling the seccomp filter: {e}"))?;
    // One program, so the kernel runs one filter per syscall: the guard
    // first, falling through into the deny list.
    let mut program = guard();
    program.extend(deny);
    Ok(vec![program])
}

// Classic BPF opcodes (linux/filter.h, linux/seccomp.h).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_JGT_K: u16 = 0x25;
const BPF_RET_K: u16 = 0x06;
const BPF_JA: u16 = 0x05;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> seccompiler::sock_filter {
    seccompiler::sock_filter { code, jt, jf, k }
}

/// The guard, in front of the deny list: foreign arch -> kill; x32
/// numbers, numbers newer than the reviewed list, and clone3 -> ENOSYS;
/// everything else falls through to what follows.
pub fn guard() -> BpfProgram {
    vec![
        insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        insn(BPF_JEQ_K, 1, 0, AUDIT_ARCH),
        insn(BPF_RET_K, 0, 0, RET_KILL_PROCESS),
        insn(BPF_LD_W_ABS, 0, 0, OFFSET_NR),
        insn(BPF_JGE_K, 3, 0, X32_SYSCALL_BIT),
        insn(BPF_JGT_K, 2, 0, NEWEST_REVIEWED_SYSCALL),
        // clone3's flags live in memory a filter cannot read: make libc
        // fall back to clone, whose flags the deny list checks.
        insn(BPF_JEQ_K, 1, 0, libc::SYS_clone3 as u32),
        insn(BPF_JA, 0, 0, 1),
        insn(BPF_RET_K, 0, 0, RET_ERRNO | libc::ENOSYS as u32),
    ]
}

/// Install the filters on the calling thread (sets no_new_privs). Last step
/// before exec: after this, only what the command itself does remains.
pub fn apply(programs: &[BpfProgram]) -> Result<(), String> {
    for p in programs {
        seccompiler::apply_filter(p).map_err(|e| format!("installing the seccomp filter: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RET_ALLOW: u32 = 0x7fff_0000;

    /// A tiny classic-BPF interpreter for the guard, enough to check it.
    /// The guard is followed by "allow", standing for the deny list.
    fn run(guard: &BpfProgram, arch: u32, nr: u32) -> u32 {
        let mut prog = guard.clone();
        prog.push(insn(BPF_RET_K, 0, 0, RET_ALLOW));
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let i = &prog[pc];
            match i.code {
                BPF_LD_W_ABS => acc = if i.k == OFFSET_ARCH { arch } else { nr },
                BPF_RET_K => return i.k,
                BPF_JA => pc += i.k as usize,
                BPF_JEQ_K | BPF_JGE_K | BPF_JGT_K => {
                    let taken = match i.code {
                        BPF_JEQ_K => acc == i.k,
                        BPF_JGE_K => acc >= i.k,
                        _ => acc > i.k,
                    };
                    pc += if taken { i.jt as usize } else { i.jf as usize };
                }
                other => panic!("unexpected opcode {other:#x}"),
            }
            pc += 1;
        }
    }

    #[test]
    fn guard_refuses_x32_numbers() {
        let g = guard();
        assert_eq!(
            run(&g, AUDIT_ARCH, X32_SYSCALL_BIT | 39),
            RET_ERRNO | libc::ENOSYS as u32
        );
        assert_eq!(
            run(&g, AUDIT_ARCH, X32_SYSCALL_BIT | 165),
            RET_ERRNO | libc::ENOSYS as u32
        );
    }

    #[test]
    fn guard_refuses_syscalls_newer_than_the_reviewed_list() {
        let g = guard();
        assert_eq!(
            run(&g, AUDIT_ARCH, NEWEST_REVIEWED_SYSCALL + 1),
            RET_ERRNO | libc::ENOSYS as u32
        );
        assert_eq!(run(&g, AUDIT_ARCH, NEWEST_REVIEWED_SYSCALL), RET_ALLOW);
        assert_eq!(run(&g, AUDIT_ARCH, libc::SYS_read as u32), RET_ALLOW);
    }

    #[test]
    fn guard_answers_clone3_with_enosys() {
        assert_eq!(
            run(&guard(), AUDIT_ARCH, libc::SYS_clone3 as u32),
            RET_ERRNO | libc::ENOSYS as u32
        );
        assert_eq!(run(&guard(), AUDIT_ARCH, libc::SYS_clone as u32), RET_ALLOW);
    }

    #[test]
    fn guard_kills_foreign_architectures() {
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        assert_eq!(run(&guard(), AUDIT_ARCH_I386, 20), RET_KILL_PROCESS);
    }

    #[test]
    fn allow_back_removes_only_the_named_syscall() {
        assert!(is_deniable("unshare") && is_deniable("mount"));
        assert!(!is_deniable("ioctl") && !is_deniable("read"));
        let all = build(&[], &Extra::default()).unwrap();
        let fewer = build(&["unshare".into()], &Extra::default()).unwrap();
        assert_eq!(all.len(), 1);
        assert!(fewer[0].len() < all[0].len());
        assert_eq!(
            all[0][..guard().len()],
            guard()[..],
            "the guard comes first"
        );
    }
}
