//! One task group for every long-running part of a process: projectors and the publisher
//! (log readers), consumer workers (intake, router, mailer), and the scheduler of offer
//! timers. A group holds its tasks
//! and one shutdown switch; `stop` flips it and waits for every task (a projector batch in
//! progress rolls back, a consumer finishes the messages in hand).

use crate::nats;
use leadroute_app::Commands;
use leadroute_projections::projectors;
use leadroute_projections::runtime::{self, Projector, RunOptions};
use sqlx::PgPool;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Running tasks and the switch that stops them.
pub struct Tasks {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
        }
    }
}

impl Tasks {
    /// Start `task`, handing it a future that resolves when the group is stopped.
    pub fn spawn<F, Fut>(&mut self, task: F)
    where
        F: FnOnce(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut stopped = self.stop.subscribe();
        let shutdown = Box::pin(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        });
        self.tasks.push(tokio::spawn(task(shutdown)));
    }

    /// Stop every task and wait for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// One task per projector.
    pub fn projectors(pool: &PgPool, options: RunOptions) -> Tasks {
        Self::projectors_of(pool, projectors::all(), options)
    }

    /// One task per entry of `projectors` (the same projector twice makes an active
    /// instance and a standby).
    pub fn projectors_of<P>(pool: &PgPool, projectors: Vec<P>, options: RunOptions) -> Tasks
    where
        P: Deref<Target = dyn Projector> + Send + Sync + 'static,
    {
        let mut tasks = Tasks::default();
        for projector in projectors {
            let pool = pool.clone();
            tasks.spawn(move |shutdown| async move {
                runtime::run(pool, &*projector, options, shutdown).await;
            });
        }
        tasks
    }

    /// `workers` intake workers on the NATS server at `url` under `names`, executing
    /// through `commands` (one event store and cache per process).
    pub async fn intake(
        commands: &Commands,
        url: &str,
        names: nats::Names,
        workers: usize,
    ) -> anyhow::Result<Tasks> {
        let worker =
            crate::intake::Intake::worker(commands.clone(), nats::connect(url).await?, names)
                .await?;
        Ok(Self::consumers(worker, workers))
    }

    /// `workers` router workers on the NATS server at `url` under `names`, with a waker of
    /// waiting leads (its consumer and its sweep every `crate::waker::SWEEP`).
    pub async fn router(
        commands: &Commands,
        url: &str,
        names: nats::Names,
        workers: usize,
    ) -> anyhow::Result<Tasks> {
        Self::router_sweeping(commands, url, names, workers, crate::waker::SWEEP).await
    }

    /// [`Tasks::router`] with the waker's sweep every `sweep`.
    pub async fn router_sweeping(
        commands: &Commands,
        url: &str,
        names: nats::Names,
        workers: usize,
        sweep: std::time::Duration,
    ) -> anyhow::Result<Tasks> {
        let js = nats::connect(url).await?;
        let waker = crate::waker::Waker::new(commands.clone());
        let worker =
            crate::router::RouterConsumer::worker(waker.clone(), js.clone(), names.clone()).await?;
        let mut tasks = Self::consumers(worker, workers);
        for worker in waker.workers(js, names).await? {
            tasks.spawn(move |shutdown| worker.run(shutdown));
        }
        tasks.spawn(move |shutdown| waker.sweep(sweep, shutdown));
        Ok(tasks)
    }

    /// The scheduler of offer timers, firing through `commands` every `every` (no NATS
    /// needed: timers are read from PostgreSQL).
    pub fn scheduler(commands: &Commands, every: std::time::Duration) -> Tasks {
        let scheduler = crate::scheduler::Scheduler::new(
            leadroute_app::router::Router::with_commands(commands.clone()),
        );
        let mut tasks = Tasks::default();
        tasks.spawn(move |shutdown| scheduler.run(every, shutdown));
        tasks
    }

    /// `workers` mailer workers on the NATS server at `url` under `names`.
    pub async fn mailer(
        commands: &Commands,
        url: &str,
        names: nats::Names,
        workers: usize,
        config: &crate::mailer::MailerConfig,
    ) -> anyhow::Result<Tasks> {
        let js = nats::connect(url).await?;
        let worker = crate::mailer::Mailer::worker(commands.clone(), js, names, config).await?;
        Ok(Self::consumers(worker, workers))
    }

    fn consumers<H: nats::worker::Handler>(
        worker: nats::worker::Worker<H>,
        workers: usize,
    ) -> Tasks {
        let mut tasks = Tasks::default();
        for _ in 0..workers.max(1) {
            let worker = worker.clone();
            tasks.spawn(move |shutdown| worker.run(shutdown));
        }
        tasks
    }
}

/// A publisher to the NATS server at `url` under `names`, its stream created if missing.
pub async fn publisher(url: &str, names: nats::Names) -> anyhow::Result<Arc<dyn Projector>> {
    let js = nats::connect(url).await?;
    nats::ensure_events_stream(&js, &names).await?;
    Ok(Arc::new(crate::publisher::Publisher::new(js, names)))
}
