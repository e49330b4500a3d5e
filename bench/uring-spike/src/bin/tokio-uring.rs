//! (c) tokio-uring: io_uring completions driven from a tokio current_thread
//! runtime, owned-buffer I/O like monoio.
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::{TcpListener, TcpStream};
use uring_spike::{handle, Outcome, BUF_SIZE};

async fn serve(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut rbuf: Vec<u8> = Vec::with_capacity(BUF_SIZE);
    let mut wbuf: Vec<u8> = Vec::with_capacity(BUF_SIZE);
    loop {
        let filled = rbuf.len();
        let (res, slice) = stream.read(rbuf.slice(filled..BUF_SIZE)).await;
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

fn main() {
    uring_spike::exit_on_sigterm();
    let addr = uring_spike::addr();
    tokio_uring::start(async {
        let listener = TcpListener::bind(addr.parse().unwrap()).unwrap();
        uring_spike::ready("tokio-uring", &addr);
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                tokio_uring::spawn(serve(stream));
            }
        }
    });
}
