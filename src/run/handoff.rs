//! Passing the proxy's listening socket out of the sandbox's network
//! namespace: init creates it inside (where the command can reach it on
//! loopback) and sends it to the supervisor over a socket pair, which serves
//! it from the host's network. No helper process, nothing listening on the
//! host.

use std::io::{IoSlice, IoSliceMut};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

/// The proxy's address inside the sandbox's own network namespace (nothing
/// else listens there, so the port is fixed).
pub const INSIDE_PORT: u16 = 3128;

/// Both ends: the supervisor keeps `receiver`, init gets `sender`.
pub fn pair() -> Result<(OwnedFd, OwnedFd), String> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| format!("socketpair for the proxy: {e}"))
}

/// In init, inside the new network namespace (loopback up): listen on the
/// proxy's address and send the socket out. Our copy is closed on return.
pub fn listen_and_send(sender: RawFd) -> Result<(), String> {
    let listener = TcpListener::bind(("127.0.0.1", INSIDE_PORT))
        .map_err(|e| format!("listening on 127.0.0.1:{INSIDE_PORT} for the proxy: {e}"))?;
    send(sender, &listener)
}

/// Send a listening socket over the pair.
fn send(sender: RawFd, listener: &TcpListener) -> Result<(), String> {
    let fds = [listener.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        sender,
        &[IoSlice::new(b"L")],
        &cmsg,
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| format!("sending the proxy socket: {e}"))?;
    Ok(())
}

/// In the supervisor: the listening socket init sent.
pub fn receive(receiver: &OwnedFd) -> Result<TcpListener, String> {
    let mut byte = [0u8; 1];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        receiver.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
    )
    .map_err(|e| format!("receiving the proxy socket: {e}"))?;
    let cmsgs = msg
        .cmsgs()
        .map_err(|e| format!("receiving the proxy socket: {e}"))?;
    for cmsg in cmsgs {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            if let [fd] = fds[..] {
                // SAFETY: the kernel just gave us this descriptor; we own it.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                return Ok(TcpListener::from(owned));
            }
            for fd in fds {
                // SAFETY: descriptors we received and will not use.
                drop(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err("the sandbox did not send the proxy socket".into())
}

/// The variables that point HTTP clients at the proxy.
pub fn proxy_env(port: u16) -> Vec<(String, String)> {
    let url = format!("http://127.0.0.1:{port}");
    let mut env = Vec::new();
    for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        env.push((name.to_string(), url.clone()));
        env.push((name.to_lowercase(), url.clone()));
    }
    let local = "localhost,127.0.0.1,::1".to_string();
    env.push(("NO_PROXY".into(), local.clone()));
    env.push(("no_proxy".into(), local));
    env.push(("NODE_USE_ENV_PROXY".into(), "1".into()));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listener_crosses_the_pair() {
        let (receiver, sender) = pair().unwrap();
        // Port 3128 may be taken on a host: exercise the transfer itself.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        send(sender.as_raw_fd(), &listener).unwrap();
        drop(listener);
        let got = receive(&receiver).unwrap();
        assert_eq!(got.local_addr().unwrap(), addr);
        let _client = std::net::TcpStream::connect(addr).unwrap();
        assert!(got.accept().is_ok());
    }

    #[test]
    fn a_message_without_a_socket_is_an_error() {
        let (receiver, sender) = pair().unwrap();
        nix::unistd::write(&sender, b"x").unwrap();
        assert!(receive(&receiver).is_err());
    }

    #[test]
    fn clients_are_pointed_at_the_proxy_in_both_spellings() {
        let env = proxy_env(3128);
        for name in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "ALL_PROXY",
            "all_proxy",
        ] {
            assert!(env
                .iter()
                .any(|(k, v)| k == name && v == "http://127.0.0.1:3128"));
        }
        assert!(env
            .iter()
            .any(|(k, v)| k == "NO_PROXY" && v.contains("127.0.0.1")));
        assert!(env
            .iter()
            .any(|(k, v)| k == "NODE_USE_ENV_PROXY" && v == "1"));
    }
}
