//! The shared fixture of the pipeline tests: a fresh database with the application layer
//! (`TestApp`), a NATS prefix of its own, and the read side running (projectors and the
//! publisher to JetStream). Workers (intake, routers, mailers) start on demand and belong
//! to the test that started them.

use crate::{drained, TestApp, TestNats};
use leadroute_workers::mailer::MailerConfig;
use leadroute_workers::nats::Names;
use leadroute_workers::tasks::{self, Tasks};

/// A database, a NATS prefix and the read side running on them.
pub struct Pipeline {
    /// The database and application layer.
    pub app: TestApp,
    /// The NATS prefix of this test.
    pub nats: TestNats,
    /// Subject and stream names under that prefix.
    pub names: Names,
    read_side: Vec<Tasks>,
}

impl Pipeline {
    /// A fresh database and NATS prefix with the read side running.
    pub async fn start() -> Pipeline {
        Self::start_on(TestApp::spawn().await, TestNats::new().await).await
    }

    /// The read side running on `app` and `nats` (prepared by the test first).
    pub async fn start_on(app: TestApp, nats: TestNats) -> Pipeline {
        let names = Names::new(&nats.prefix, &nats.crm_prefix()).expect("valid test prefixes");
        let publisher = tasks::publisher(&nats.url, names.clone())
            .await
            .expect("the publisher starts");
        let read_side = vec![
            Tasks::projectors(&app.db.pool, Default::default()),
            Tasks::projectors_of(&app.db.pool, vec![publisher], Default::default()),
        ];
        Pipeline {
            app,
            nats,
            names,
            read_side,
        }
    }

    /// `workers` intake workers.
    pub async fn intake(&self, workers: usize) -> Tasks {
        Tasks::intake(
            &self.app.commands,
            &self.nats.url,
            self.names.clone(),
            workers,
        )
        .await
        .expect("the intake starts")
    }

    /// `workers` router workers.
    pub async fn router(&self, workers: usize) -> Tasks {
        self.router_sweeping(workers, leadroute_workers::waker::SWEEP)
            .await
    }

    /// `workers` router workers, whose waker sweeps every `sweep`.
    pub async fn router_sweeping(&self, workers: usize, sweep: std::time::Duration) -> Tasks {
        Tasks::router_sweeping(
            &self.app.commands,
            &self.nats.url,
            self.names.clone(),
            workers,
            sweep,
        )
        .await
        .expect("the router starts")
    }

    /// One mailer worker with `config`.
    pub async fn mailer(&self, config: &MailerConfig) -> Tasks {
        Tasks::mailer(
            &self.app.commands,
            &self.nats.url,
            self.names.clone(),
            1,
            config,
        )
        .await
        .expect("the mailer starts")
    }

    /// Wait until the log is published and the durable `consumer` of the events stream has
    /// nothing pending.
    pub async fn drained(&self, consumer: &str) {
        drained(
            &self.app.db.pool,
            &self.nats,
            &self.names.events_stream(),
            consumer,
        )
        .await;
    }

    /// Stop the read side.
    pub async fn stop(self) {
        for tasks in self.read_side {
            tasks.stop().await;
        }
    }
}
