//! The two `NETLINK_ROUTE` sockets: one subscribed to link and address
//! events (never sends), one for requests (strict checking, so that dumps
//! are filtered in the kernel). Both are bound to the network namespace of
//! the thread that opens them.

use std::io;
use std::os::fd::AsRawFd;
use std::time::Duration;

use netlink_sys::{Socket, protocols::NETLINK_ROUTE};
use tokio::io::unix::AsyncFd;

use crate::build::Request;
use crate::error::PlatformError;
use crate::parse::{
    MsgHeader, NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, messages, parse_done, parse_error,
};

/// `RTNLGRP_LINK`.
pub(crate) const RTNLGRP_LINK: u32 = 1;
/// `RTNLGRP_IPV4_IFADDR`.
pub(crate) const RTNLGRP_IPV4_IFADDR: u32 = 5;
/// `RTNLGRP_IPV6_IFADDR`.
pub(crate) const RTNLGRP_IPV6_IFADDR: u32 = 9;
/// `RTNLGRP_IPV6_IFINFO`: IPv6's link flags, changed by router advertisements.
pub(crate) const RTNLGRP_IPV6_IFINFO: u32 = 12;

/// Room for one datagram: the kernel cuts dumps into pieces of at most
/// 32 KiB less its skb overhead, unless one message is bigger; a bigger
/// datagram grows the buffer (and what was cut off is reported as
/// [`Recv::Truncated`]). More would only be zeroed and kept resident.
const BUFFER: usize = 32 * 1024;

/// Datagrams of one answer read before yielding to other tasks (a
/// datagram of a route dump holds some 300 routes).
const YIELD_EVERY: usize = 8;

/// What one receive gave.
#[derive(Debug)]
pub(crate) enum Recv {
    /// A datagram of this many bytes is in the buffer.
    Data(usize),
    /// Nothing queued (non-blocking receive only).
    Empty,
    /// The socket's receive queue overflowed and events were lost.
    Overrun,
    /// The datagram was bigger than the buffer; the buffer has grown, the
    /// datagram is lost.
    Truncated(usize),
}

pub(crate) struct NlSocket {
    fd: AsyncFd<Socket>,
    buf: Vec<u8>,
    port: u32,
}

fn io_err(context: &'static str) -> impl FnOnce(io::Error) -> PlatformError {
    move |e| PlatformError::socket(context, e)
}

impl NlSocket {
    /// A socket in the calling thread's network namespace.
    fn open() -> Result<Socket, PlatformError> {
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(io_err("creating"))?;
        sock.bind_auto().map_err(io_err("binding"))?;
        sock.set_non_blocking(true).map_err(io_err("setting O_NONBLOCK"))?;
        Ok(sock)
    }

    fn wrap(sock: Socket) -> Result<NlSocket, PlatformError> {
        let mut addr = netlink_sys::SocketAddr::new(0, 0);
        sock.get_address(&mut addr).map_err(io_err("reading the bound address"))?;
        // SAFETY: `Socket` owns its descriptor, keeps it open until it is
        // dropped (with the AsyncFd) and always returns the same one.
        let fd = unsafe { AsyncFd::register(sock) }
            .map_err(|e| PlatformError::socket("registering with tokio", io::Error::from(e)))?;
        Ok(NlSocket { fd, buf: vec![0; BUFFER], port: addr.port_number() })
    }

    /// The event socket: subscribed to `groups`, with a receive queue of
    /// `rcvbuf` bytes (forced past `rmem_max` when we may).
    pub fn events(groups: &[u32], rcvbuf: usize) -> Result<NlSocket, PlatformError> {
        let sock = NlSocket::open()?;
        for &g in groups {
            sock.add_membership(g).map_err(io_err("joining a multicast group"))?;
        }
        set_rcvbuf(&sock, rcvbuf);
        NlSocket::wrap(sock)
    }

    /// The request socket.
    pub fn requests() -> Result<NlSocket, PlatformError> {
        let sock = NlSocket::open()?;
        // Kernels before 4.20 do not know strict checking: their dumps are
        // not filtered, and the parser filters instead.
        if let Err(e) = sock.set_netlink_get_strict_chk(true) {
            tracing::debug!(error = %e, "no NETLINK_GET_STRICT_CHK: route dumps are filtered while reading");
        }
        // Error messages with the kernel's text, without a copy of the request.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        NlSocket::wrap(sock)
    }

    pub fn port(&self) -> u32 {
        self.port
    }

    /// The last datagram received.
    pub fn data(&self, len: usize) -> &[u8] {
        &self.buf[..len.min(self.buf.len())]
    }

    fn recv_now(fd: &Socket, buf: &mut Vec<u8>) -> io::Result<Recv> {
        // SAFETY: recv writes at most buf.len() bytes into buf, which is
        // initialised memory we own; MSG_TRUNC only changes the returned length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOBUFS) => Ok(Recv::Overrun),
                _ => Err(e),
            };
        }
        let n = n as usize;
        if n > buf.len() {
            buf.resize(n.next_multiple_of(4096), 0);
            return Ok(Recv::Truncated(n));
        }
        Ok(Recv::Data(n))
    }

    /// Waits for the next datagram (or overrun).
    pub async fn recv(&mut self) -> Result<Recv, PlatformError> {
        loop {
            let mut guard = self.fd.readable().await.map_err(io_err("waiting for data"))?;
            let buf = &mut self.buf;
            match guard.try_io(|fd| NlSocket::recv_now(fd.get_ref(), buf)) {
                Ok(Ok(r)) => return Ok(r),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(PlatformError::socket("receiving", e)),
                Err(_would_block) => continue,
            }
        }
    }

    /// The next datagram if one is queued, without waiting.
    pub fn try_recv(&mut self) -> Result<Recv, PlatformError> {
        match NlSocket::recv_now(self.fd.get_ref(), &mut self.buf) {
            Ok(r) => Ok(r),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Recv::Empty),
            Err(e) => Err(PlatformError::socket("receiving", e)),
        }
    }

    /// Sends one request to the kernel.
    pub async fn send(&self, bytes: &[u8]) -> Result<(), PlatformError> {
        let kernel = netlink_sys::SocketAddr::new(0, 0);
        loop {
            let mut guard = self.fd.writable().await.map_err(io_err("waiting to send"))?;
            match guard.try_io(|fd| fd.get_ref().send_to(bytes, &kernel, 0)) {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                Ok(Err(e)) => return Err(PlatformError::socket("sending", e)),
                Err(_would_block) => continue,
            }
        }
    }
}

fn set_rcvbuf(sock: &Socket, bytes: usize) {
    let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let set = |opt| {
        // SAFETY: a valid fd and a c_int option value of the right size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if set(libc::SO_RCVBUFFORCE) != 0 && set(libc::SO_RCVBUF) != 0 {
        tracing::debug!(bytes, "could not set the netlink receive buffer");
    }
}

/// How a dump ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DumpEnd {
    Complete,
    /// The kernel flagged it `NLM_F_DUMP_INTR`: objects changed while it
    /// ran, so it may be inconsistent.
    Interrupted,
}

/// The request socket and its sequence numbers. One request at a time
/// (the caller holds it behind a mutex).
pub(crate) struct Requester {
    sock: NlSocket,
    seq: u32,
    /// A request whose answer was not read to its end (its caller was
    /// cancelled, or stopped reading on an error). Its rest is read and
    /// dropped before the next request: the kernel refuses a new dump
    /// while one is still running on the socket.
    unfinished: Option<u32>,
}

impl Requester {
    pub fn open() -> Result<Requester, PlatformError> {
        Ok(Requester { sock: NlSocket::requests()?, seq: 0, unfinished: None })
    }

    /// Sends `req` and hands every answer message (type, payload) of a
    /// dump to `on_message`; for other requests, waits for the
    /// acknowledgement. `op` names the request in errors.
    pub async fn run(
        &mut self,
        req: &Request,
        op: &(dyn Fn() -> String + Sync),
        on_message: &mut (dyn FnMut(u16, &[u8]) + Send),
    ) -> Result<DumpEnd, PlatformError> {
        if let Some(old) = self.unfinished.take() {
            self.finish(old).await?;
        }
        self.seq = self.seq.wrapping_add(1).max(1);
        let seq = self.seq;
        // The only await in `send` comes before the bytes go out, so a
        // cancelled call either sent nothing or is marked unfinished.
        self.sock.send(&req.emit(seq)).await?;
        self.unfinished = Some(seq);
        let end = self.read_answer(seq, op, on_message).await;
        // Every error but a socket failure ends the answer.
        if !matches!(end, Err(PlatformError::Socket { .. })) {
            self.unfinished = None;
        }
        end
    }

    async fn finish(&mut self, seq: u32) -> Result<(), PlatformError> {
        let op = || String::new();
        let mut ignore = |_: u16, _: &[u8]| {};
        let rest = self.read_answer(seq, &op, &mut ignore);
        match tokio::time::timeout(Duration::from_secs(2), rest).await {
            Ok(Err(e @ PlatformError::Socket { .. })) => Err(e),
            Ok(_) => Ok(()),
            Err(_) => {
                tracing::warn!(seq, "no end to an abandoned netlink answer; going on");
                Ok(())
            }
        }
    }

    async fn read_answer(
        &mut self,
        seq: u32,
        op: &(dyn Fn() -> String + Sync),
        on_message: &mut (dyn FnMut(u16, &[u8]) + Send),
    ) -> Result<DumpEnd, PlatformError> {
        let mut end = DumpEnd::Complete;
        let mut truncated = false;
        let mut datagrams = 0usize;
        loop {
            // A big dump is always ready to read: let other tasks of the
            // runtime in now and then.
            datagrams += 1;
            if datagrams == YIELD_EVERY {
                datagrams = 0;
                tokio::task::yield_now().await;
            }
            let len = match self.sock.recv().await? {
                Recv::Data(n) => n,
                Recv::Empty | Recv::Overrun => continue,
                Recv::Truncated(n) => {
                    tracing::warn!(bytes = n, "netlink answer bigger than the buffer; retrying");
                    truncated = true;
                    continue;
                }
            };
            let port = self.sock.port();
            for m in messages(self.sock.data(len)) {
                let (h, payload): (MsgHeader, &[u8]) = m?;
                if h.seq != seq || (h.port != 0 && h.port != port) {
                    continue;
                }
                match h.kind {
                    NLMSG_NOOP => {}
                    NLMSG_ERROR => {
                        let (code, message) = parse_error(h.flags, payload)?;
                        return if code == 0 {
                            Ok(end)
                        } else {
                            Err(PlatformError::Kernel { op: op(), errno: code.saturating_neg(), message })
                        };
                    }
                    NLMSG_DONE => {
                        // A dump may end with an error code instead of 0.
                        let (code, message) = parse_done(h.flags, payload);
                        if code < 0 {
                            return Err(PlatformError::Kernel { op: op(), errno: code.saturating_neg(), message });
                        }
                        if truncated {
                            end = DumpEnd::Interrupted;
                        }
                        return Ok(end);
                    }
                    NLMSG_OVERRUN => {
                        return Err(PlatformError::Malformed(format!("{}: NLMSG_OVERRUN", op())));
                    }
                    kind => {
                        if h.flags & NLM_F_DUMP_INTR != 0 {
                            end = DumpEnd::Interrupted;
                        }
                        on_message(kind, payload);
                    }
                }
            }
        }
    }
}
