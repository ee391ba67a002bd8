//! The `executor::Executor` trait on [`CeleryExecutor`]: generic code that
//! runs on the thread pool, the process pool and the inline executor runs on
//! Celery workers too. A submitted `fn` must be in the executor's
//! [`Registry`](crate::Registry) (the worker runs it by name); one that is
//! not is refused with [`ErrorKind::InvalidArgument`].

use std::error::Error;

use executor::{ErrorKind, Executor, ExecutorError, Payload};
use future::{Future, Interrupt};

use crate::error::CeleryError;
use crate::executor::CeleryExecutor;

const CELERY: &str = "celery executor";

impl From<CeleryError> for ExecutorError {
    fn from(e: CeleryError) -> Self {
        let kind = match &e {
            CeleryError::Shutdown => ErrorKind::Shutdown,
            CeleryError::NotRegistered(_) | CeleryError::Json(_) | CeleryError::BadUrl(..) => {
                ErrorKind::InvalidArgument
            }
            _ => ErrorKind::Unavailable,
        };
        ExecutorError::new(kind, CELERY, e)
    }
}

impl Executor for CeleryExecutor {
    fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, ExecutorError>
    where
        A: Payload,
        R: Payload,
    {
        Ok(CeleryExecutor::submit(self, f, arg)?)
    }

    fn submit_fallible<A, R, E>(
        &self,
        f: fn(A) -> Result<R, E>,
        arg: A,
    ) -> Result<Future<R>, ExecutorError>
    where
        A: Payload,
        R: Payload,
        E: Error + Send + Sync + 'static,
    {
        Ok(CeleryExecutor::submit_fallible(self, f, arg)?)
    }

    /// The executor's own `interrupt`: `revoke(terminate=True,
    /// signal="SIGTERM")`, as Python's `AsyncResult.revoke`.
    fn interrupt<R>(&self, future: &Future<R>) -> Result<Interrupt, ExecutorError> {
        Ok(CeleryExecutor::interrupt(self, future))
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        CeleryExecutor::shutdown(self, wait, cancel_futures);
    }

    fn recorder(&self) -> Option<&future::trace::Recorder> {
        CeleryExecutor::recorder(self)
    }
}
