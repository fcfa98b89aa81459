//! A run: its [`Options`], the [`Provisioner`] that performs an [`Action`] on a [`Plan`], and [`run`], which takes a Cluster from a file or the API server to a report (and, by name, to its status).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tkeha_kube::Target;

use crate::action::Action;
use crate::cluster_api::{self, ClusterApiError, Verdict};
use crate::hostkeys::HostKeyPolicy;
use crate::interrupt::Interrupt;
use crate::manifest::{Plan, PlanError, load_plan};
use crate::net::{Network, Routed};
use crate::observer::{Observer, Silent};
use crate::remote::Connector;
use crate::remote::ssh::SshConnector;
use crate::report::{JumpServerReport, Report};
use crate::transport::Dialer;
use crate::{apply, check, drill, status, uninstall};

/// Knobs of a run that are not in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// How SSH host keys are checked.
    pub host_keys: HostKeyPolicy,
    /// TCP connect + handshake + auth timeout per host.
    pub connect_timeout: Duration,
    /// How long to wait for the VIP to settle (apply) or move (drill).
    pub wait_timeout: Duration,
    /// Set to stop a drill early; it puts back what it moved (see [`Interrupt::on_signals`]).
    pub interrupt: Interrupt,
    /// `--failover-profile`: overrides the Cluster's annotation.
    pub failover_profile: Option<crate::FailoverProfile>,
}

impl Options {
    /// The defaults (5 s per connection, 30 s for the VIP) with a host-key policy.
    pub fn new(host_keys: HostKeyPolicy) -> Self {
        Options {
            host_keys,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(30),
            interrupt: Interrupt::new(),
            failover_profile: None,
        }
    }
}

/// Where the Cluster of one run comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `-f FILE`: a manifest on disk; nothing is written back.
    File(PathBuf),
    /// `CLUSTER-NAME`: a Cluster object read through the API server; its status is updated.
    Cluster(String),
}

/// Performs actions on the masters of a plan: how it reaches them ([`Connector`]), how it
/// probes the VIP from this host ([`Network`]), and who hears about progress ([`Observer`]).
pub struct Provisioner<'o> {
    pub(crate) connector: Box<dyn Connector>,
    pub(crate) network: Box<dyn Network>,
    pub(crate) observer: &'o dyn Observer,
    pub(crate) wait_timeout: Duration,
    /// The dialer behind both (SSH): its jump sessions go into the report.
    pub(crate) dialer: Option<Arc<Dialer>>,
    pub(crate) interrupt: Interrupt,
}

impl std::fmt::Debug for Provisioner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioner")
            .field("network", &self.network)
            .field("wait_timeout", &self.wait_timeout)
            .finish_non_exhaustive()
    }
}

impl Provisioner<'static> {
    /// Reach the masters over SSH with `options`, each along its route (directly, or through its
    /// SOCKS5 proxy or jump server: one jump session per distinct jump server, shared by the
    /// masters behind it and by the probes), probe the VIP along the masters' route, tell nobody.
    pub fn new(options: &Options) -> Self {
        let connector = SshConnector::new(options.host_keys.clone(), options.connect_timeout);
        let dialer = Arc::clone(&connector.dialer);
        let mut p = Self::with_parts(
            connector,
            Routed::new(Arc::clone(&dialer)),
            options.wait_timeout,
        )
        .interrupted_by(options.interrupt.clone());
        p.dialer = Some(dialer);
        p
    }

    /// A provisioner over other ways of reaching the masters and the network (a proxy, a
    /// test's fake); `wait_timeout` as [`Options::wait_timeout`].
    pub fn with_parts(
        connector: impl Connector + 'static,
        network: impl Network + 'static,
        wait_timeout: Duration,
    ) -> Self {
        Provisioner {
            connector: Box::new(connector),
            network: Box::new(network),
            observer: &Silent,
            wait_timeout,
            dialer: None,
            interrupt: Interrupt::new(),
        }
    }
}

impl Provisioner<'_> {
    /// The same provisioner, telling `observer` what happens.
    pub fn observed_by(self, observer: &dyn Observer) -> Provisioner<'_> {
        Provisioner {
            connector: self.connector,
            network: self.network,
            observer,
            wait_timeout: self.wait_timeout,
            dialer: self.dialer,
            interrupt: self.interrupt,
        }
    }

    /// The same provisioner, stopping a drill early (and putting back what it moved) once
    /// `interrupt` is set.
    pub fn interrupted_by(self, interrupt: Interrupt) -> Self {
        Provisioner { interrupt, ..self }
    }

    /// Run `action` on every master of `plan` and report per host. Never fails as a whole: what
    /// went wrong where is in the report (`ok`, per-host `error`, general `errors`).
    ///
    /// `apply` establishes everything that can fail on any master before it changes the first
    /// one; `check` and `status` change nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tkeha_provisioner::remote::{Connector, Remote, RemoteError};
    /// use std::sync::Arc;
    /// use tkeha_provisioner::net::Routed;
    /// use tkeha_provisioner::transport::Dialer;
    /// use tkeha_provisioner::{Action, HostKeyPolicy, Machine, Provisioner, plan_from_text};
    ///
    /// /// Masters that cannot be reached (a real run uses `Provisioner::new(&options)`: SSH).
    /// struct Unreachable;
    /// impl Connector for Unreachable {
    ///     fn connect(&self, m: &Machine) -> Result<Box<dyn Remote>, RemoteError> {
    ///         let addr = format!("{}:{}", m.ip, m.port);
    ///         Err(RemoteError::Connect { addr, message: "No route to host".into() })
    ///     }
    /// }
    ///
    /// let plan = plan_from_text(
    ///     r#"{"apiVersion": "platform.tkestack.io/v1", "kind": "Cluster",
    ///         "metadata": {"name": "doc"},
    ///         "spec": {"type": "Baremetal", "version": "1.30.0",
    ///                  "features": {"ha": {"tke": {"vip": "192.0.2.100"}}},
    ///                  "machines": [{"ip": "192.0.2.11", "username": "root",
    ///                                "password": "MTIzNDU2"}]}}"#,
    ///     "doc.json",
    /// )?;
    /// let probes = Routed::new(Arc::new(Dialer::new(HostKeyPolicy::Insecure)));
    /// let provisioner = Provisioner::with_parts(Unreachable, probes, Duration::from_secs(30));
    /// let report = provisioner.run(Action::Apply, &plan);
    /// assert!(!report.ok);
    /// assert_eq!(
    ///     report.hosts[0].error.as_deref(),
    ///     Some("cannot connect to 192.0.2.11:22: No route to host")
    /// );
    /// assert_eq!(report.errors, ["preflight failed: nothing was changed on any master"]);
    /// # Ok::<(), tkeha_provisioner::PlanError>(())
    /// ```
    pub fn run(&self, action: Action, plan: &Plan) -> Report {
        self.observer.planned(action, plan);
        let mut report = match action {
            Action::Check => check::check(self, plan),
            Action::Apply => apply::apply(self, plan),
            Action::Status => status::status(self, plan),
            Action::Drill => drill::drill(self, plan),
            Action::Uninstall => uninstall::uninstall(self, plan),
        };
        if let Some(dialer) = &self.dialer {
            report.jump_servers = dialer
                .jump_stats()
                .iter()
                .map(JumpServerReport::from)
                .collect();
        }
        self.observer.finished(&report);
        report
    }
}

/// The end of a run that got as far as the masters.
#[derive(Debug)]
pub struct Outcome {
    /// What the action did on the masters.
    pub report: Report,
    /// The `HAReady` verdict written to the Cluster's status (`None` for a file, for `check`,
    /// or when the write failed).
    pub condition: Option<Verdict>,
    /// Why the status could not be written, when it could not.
    pub status_error: Option<ClusterApiError>,
}

impl Outcome {
    /// Every master is fine and, by name, the outcome was recorded.
    pub fn ok(&self) -> bool {
        self.report.ok && self.status_error.is_none()
    }
}

/// A run that never reached a master: nothing was changed anywhere.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The manifest file could not be read, or the Cluster in it is refused by the rules.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The Cluster could not be read through the API server, or it is refused by the rules.
    #[error(transparent)]
    Cluster(#[from] ClusterApiError),
}

/// Take the Cluster from `source`, review it with the shared rules, run `action` on its masters
/// with `options`, and, for a Cluster read by name through `target`, record the outcome in its
/// status (condition `HAReady`, `status.ha`; `check` only reads). `target` is contacted only for
/// [`Source::Cluster`]. `observer` hears the plan, each step and the report as they come.
///
/// # Errors
///
/// [`RunError`] when no master was contacted: an unreadable or invalid manifest, a Cluster that
/// cannot be read or is invalid (its status then says `InvalidCluster`). Failures on the masters
/// and a failed status write are in the [`Outcome`].
///
/// ```no_run
/// use tkeha_provisioner::{Action, HostKeyPolicy, Options, Source, Silent, run};
/// use tkeha_kube::Target;
///
/// let options = Options::new(HostKeyPolicy::KnownHosts("/root/.ssh/known_hosts".into()));
/// let outcome = run(
///     Action::Status,
///     &Source::Cluster("prod".into()),
///     &options,
///     &Target::default(),
///     &Silent,
/// )?;
/// println!("{}", outcome.report.to_text());
/// # Ok::<(), tkeha_provisioner::RunError>(())
/// ```
pub fn run(
    action: Action,
    source: &Source,
    options: &Options,
    target: &Target,
    observer: &dyn Observer,
) -> Result<Outcome, RunError> {
    let provisioner = Provisioner::new(options).observed_by(observer);
    match source {
        Source::File(path) => {
            let mut plan = load_plan(path)?;
            plan.failover_profile = options.failover_profile.or(plan.failover_profile);
            Ok(Outcome {
                report: provisioner.run(action, &plan),
                condition: None,
                status_error: None,
            })
        }
        Source::Cluster(name) => Ok(cluster_api::run(target, name, action, |plan| {
            let mut plan = plan.clone();
            plan.failover_profile = options.failover_profile.or(plan.failover_profile);
            provisioner.run(action, &plan)
        })?),
    }
}
