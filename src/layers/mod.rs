//! The effectful layers. Each module applies one kernel feature; the
//! decisions of what to apply were made in `policy` and `plan`.

pub mod landlock;
pub mod limits;
pub mod mounts;
pub mod namespaces;
pub mod privs;
pub mod protect;
pub mod seccomp;
