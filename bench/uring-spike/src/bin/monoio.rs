//! (b) monoio, thread-per-core runtime with owned-buffer ("rent") I/O.
//! `monoio` uses the io_uring driver; `monoio legacy` (second argument, or
//! MONOIO_DRIVER=legacy) uses monoio's own epoll driver as a control.
use monoio::buf::{IoBufMut, SliceMut};
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{TcpListener, TcpStream};
use uring_spike::{handle, Outcome, BUF_SIZE};

async fn serve(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    // Owned buffers: handed to the kernel for the duration of each operation
    // and given back with its result, so the same two Vecs are reused.
    let mut rbuf: Vec<u8> = Vec::with_capacity(BUF_SIZE);
    let mut wbuf: Vec<u8> = Vec::with_capacity(BUF_SIZE);
    loop {
        // Read into the free tail of rbuf (rbuf.len() bytes are a kept
        // partial request).
        let filled = rbuf.len();
        let slice: SliceMut<Vec<u8>> = rbuf.slice_mut(filled..BUF_SIZE);
        let (res, slice) = stream.read(slice).await;
        rbuf = slice.into_inner();
        match res {
            Ok(0) => return uring_spike::peer_closed(),
            Err(_) => return,
            Ok(_) => {}
        }
        let (consumed, close) = match handle(&rbuf, &mut wbuf) {
            Outcome::Ok { consumed, close } => (consumed, close),
            Outcome::Bad { consumed } => (consumed, true),
        };
        if !wbuf.is_empty() {
            let (res, buf) = stream.write_all(wbuf).await;
            wbuf = buf;
            if res.is_err() {
                return;
            }
            wbuf.clear();
        }
        if close {
            return;
        }
        rbuf.drain(..consumed);
    }
}

async fn accept_loop(addr: String, kind: &str) {
    let listener = TcpListener::bind(&addr).unwrap();
    uring_spike::ready(kind, &addr);
    loop {
        if let Ok((stream, _)) = listener.accept().await {
            monoio::spawn(serve(stream));
        }
    }
}

fn main() {
    uring_spike::exit_on_sigterm();
    let addr = uring_spike::addr();
    let legacy = std::env::args().nth(2).as_deref() == Some("legacy")
        || std::env::var("MONOIO_DRIVER").as_deref() == Ok("legacy");
    // No timer driver (tokio-ct runs without one too).
    if legacy {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .build()
            .unwrap()
            .block_on(accept_loop(addr, "monoio-legacy"));
    } else {
        monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
            .with_entries(1024)
            .build()
            .expect("io_uring runtime (kernel too old or io_uring disabled?)")
            .block_on(accept_loop(addr, "monoio-uring"));
    }
}
