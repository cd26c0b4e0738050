//! Per-call timings, for `-vv`: an interceptor on every client notes when a call starts and,
//! when it ends (retries included), tells a process-wide listener, the way a logger is set
//! once for a process. No listener, no cost beyond one check per call. This module never prints.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_config::Region;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_types::SigningName;

/// One finished AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The signing name ("logs", "monitoring").
    pub service: String,
    pub operation: String,
    pub region: String,
    pub elapsed: Duration,
    pub attempts: u32,
    pub ok: bool,
}

pub type CallListener = Arc<dyn Fn(&Call) + Send + Sync>;

static LISTENER: OnceLock<CallListener> = OnceLock::new();

/// Sets the listener for every call from now on; the first one set stays.
pub fn listen(listener: CallListener) {
    let _ = LISTENER.set(listener);
}

/// The interceptor every client carries.
#[derive(Debug, Clone, Copy, Default)]
pub struct TimeCalls;

#[derive(Debug, Clone)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

impl Intercept for TimeCalls {
    fn name(&self) -> &'static str {
        "TimeCalls"
    }

    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if LISTENER.get().is_some() {
            cfg.interceptor_state().store_put(Started(Instant::now()));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (Some(listener), Some(started)) = (LISTENER.get(), cfg.load::<Started>()) else {
            return Ok(());
        };
        let metadata = cfg.load::<Metadata>();
        let call = Call {
            service: cfg
                .load::<SigningName>()
                .map(|s| s.as_ref().to_string())
                .or(metadata.map(|m| m.service().to_string()))
                .unwrap_or_default(),
            operation: metadata.map(|m| m.name().to_string()).unwrap_or_default(),
            region: cfg.load::<Region>().map(|r| r.to_string()).unwrap_or_default(),
            elapsed: started.0.elapsed(),
            attempts: cfg.load::<RequestAttempts>().map_or(1, RequestAttempts::attempts),
            ok: matches!(context.output_or_error(), Some(Ok(_))),
        };
        listener(&call);
        Ok(())
    }
}
