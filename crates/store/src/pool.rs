//! A tiny connection pool: idle connections in a `Mutex<Vec<_>>`, a new one opened when none
//! is idle, at most `max_idle` kept. Both backends use it; neither needs more (a worker runs a
//! handful of short statements per trial).

use std::sync::{Mutex, MutexGuard};

pub struct Pool<C> {
    idle: Mutex<Vec<C>>,
    max_idle: usize,
}

impl<C> Pool<C> {
    pub fn new(max_idle: usize) -> Self {
        Pool {
            idle: Mutex::new(Vec::new()),
            max_idle,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<C>> {
        // The vector is valid whatever a panicking holder was doing, so poisoning is harmless.
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection, or a new one from `open`.
    pub fn get<E>(&self, open: impl FnOnce() -> Result<C, E>) -> Result<Pooled<'_, C>, E> {
        let idle = self.lock().pop();
        let conn = match idle {
            Some(c) => c,
            None => open()?,
        };
        Ok(Pooled {
            pool: self,
            conn: Some(conn),
            discard: false,
        })
    }

    /// Puts an idle connection in (used right after opening, to keep the first one).
    pub fn put(&self, conn: C) {
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }
}

/// A connection on loan; returned to the pool on drop unless [`Pooled::discard`]ed.
pub struct Pooled<'a, C> {
    pool: &'a Pool<C>,
    conn: Option<C>,
    discard: bool,
}

impl<C> Pooled<'_, C> {
    /// Drops the connection instead of returning it (it is broken).
    pub fn discard(&mut self) {
        self.discard = true;
    }
}

impl<C> std::ops::Deref for Pooled<'_, C> {
    type Target = C;
    fn deref(&self) -> &C {
        // `conn` is only taken in `drop`.
        match &self.conn {
            Some(c) => c,
            None => unreachable!("pooled connection used after drop"),
        }
    }
}

impl<C> std::ops::DerefMut for Pooled<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        match &mut self.conn {
            Some(c) => c,
            None => unreachable!("pooled connection used after drop"),
        }
    }
}

impl<C> Drop for Pooled<'_, C> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take()
            && !self.discard
        {
            self.pool.put(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_returned_connections_and_drops_discarded_ones() {
        let pool: Pool<u32> = Pool::new(2);
        let mut opened = 0;
        {
            let a = pool.get(|| -> Result<u32, ()> {
                opened += 1;
                Ok(opened)
            });
            assert_eq!(*a.unwrap(), 1);
        }
        let mut b = pool.get(|| -> Result<u32, ()> { Ok(99) }).unwrap();
        assert_eq!(*b, 1, "the returned connection is reused");
        b.discard();
        drop(b);
        let c = pool.get(|| -> Result<u32, ()> { Ok(42) }).unwrap();
        assert_eq!(*c, 42, "a discarded connection is not reused");
    }
}
