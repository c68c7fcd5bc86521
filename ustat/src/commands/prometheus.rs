//! `ustat --prometheus ADDR`: no dashboard; `/metrics` in the Prometheus text format.
//!
//! Two threads: this one attaches, polls the source every interval and renders the metrics
//! into a text; the server thread answers each scrape with the last rendered text, so a
//! scrape never waits for the kernel, also while probes are being attached. A signal ends
//! the poll loop, the source is dropped (every probe detached) and ustat exits.

use std::{
    net::{SocketAddr, TcpListener},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use prometheus::core::Collector as _;

use crate::{
    cli::WatchArgs,
    container,
    exit::UsageError,
    metrics::{self, Exporter},
    signals::StopFlag,
    snapshot::Source as _,
    source::KernelSource,
};

/// The last rendered metrics and the number of scrapes served, shared with the server.
#[derive(Default)]
struct Published {
    text: Mutex<Arc<String>>,
    scrapes: AtomicU64,
}

impl Published {
    fn set(&self, text: String) {
        // A poisoned lock only means a server thread panicked mid-clone; the text is whole.
        let mut current = self.text.lock().unwrap_or_else(|e| e.into_inner());
        *current = Arc::new(text);
    }

    fn get(&self) -> Arc<String> {
        Arc::clone(&self.text.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub fn run(args: &WatchArgs, address: SocketAddr) -> anyhow::Result<()> {
    crate::capabilities::require(crate::capabilities::TRACING)?;
    let listener = TcpListener::bind(address)
        .map_err(|e| UsageError(format!("cannot listen on {address}: {e}")))?;
    let address = listener.local_addr().unwrap_or(address);
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| anyhow::anyhow!("cannot serve on {address}: {e}"))?;
    let server = Arc::new(server);
    let stop = StopFlag::install()?;

    let method_top = usize::from(args.prometheus_methods);
    let mut exporter = Exporter::new(method_top);
    let own = prometheus::process_collector::ProcessCollector::for_self();
    let published = Arc::new(Published::default());
    published.set(render(&exporter, &own));
    let serving = {
        let server = Arc::clone(&server);
        let published = Arc::clone(&published);
        std::thread::Builder::new()
            .name("ustat-metrics".into())
            .spawn(move || serve(&server, &published))?
    };

    let result = poll_loop(args, &stop, &mut exporter, &own, &published, address);
    server.unblock();
    let _ = serving.join();
    result
}

/// Attaches, then renders the metrics after every interval until a signal or `-n`.
fn poll_loop(
    args: &WatchArgs,
    stop: &StopFlag,
    exporter: &mut Exporter,
    own: &prometheus::process_collector::ProcessCollector,
    published: &Published,
    address: SocketAddr,
) -> anyhow::Result<()> {
    let method_top = usize::from(args.prometheus_methods);
    // No metric reads sampled stacks (yet): the sampler would cost without showing.
    let options = crate::source::Options {
        sample_hz: 0,
        ..args.source_options(method_top)
    };
    let mut source = KernelSource::start(options)?;
    eprintln!(
        "ustat: tracing {}{}; metrics at http://{address}/metrics every {:.3} s; Ctrl-C to stop",
        crate::format::plural(
            source.traced() as u64,
            "runtime process",
            "runtime processes"
        ),
        if args.pid.is_empty() {
            " (and any that start)"
        } else {
            ""
        },
        args.interval.as_secs_f64(),
    );
    let mut next = Instant::now() + args.interval;
    let mut intervals = 0u64;
    loop {
        let stopping = super::watch::wait_draining(stop, &mut source, next);
        next += args.interval;
        let snapshot = source.poll()?;
        let now = Instant::now();
        let scrapes = published.scrapes.load(Ordering::Relaxed);
        exporter.update(&snapshot, scrapes, now, container::of_process);
        published.set(render(exporter, own));
        exporter.published(published.scrapes.load(Ordering::Relaxed), now);
        intervals += 1;
        if stopping || args.count.is_some_and(|count| intervals >= count) {
            // The probes are detached here, before ustat exits.
            drop(source);
            return Ok(());
        }
    }
}

/// The exporter's metrics and ustat's own CPU and memory, as text.
fn render(exporter: &Exporter, own: &prometheus::process_collector::ProcessCollector) -> String {
    let mut families = exporter.render();
    families.extend(own.collect());
    metrics::encode(&families)
}

/// Answers requests until the server is unblocked: `/metrics` gets the last rendered text.
fn serve(server: &tiny_http::Server, published: &Published) {
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or_default();
        let (status, content_type, body) = if path == "/metrics" {
            // Counted before the text is taken: a scrape counted after a publish saw it.
            published.scrapes.fetch_add(1, Ordering::Relaxed);
            (200, metrics::CONTENT_TYPE, published.get())
        } else {
            (
                404,
                "text/plain; charset=utf-8",
                Arc::new("ustat serves /metrics\n".to_string()),
            )
        };
        let mut response = tiny_http::Response::from_string(body.as_str()).with_status_code(status);
        if let Ok(header) = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type) {
            response.add_header(header);
        }
        // A client that went away is its own problem, not ustat's.
        let _ = request.respond(response);
    }
}
