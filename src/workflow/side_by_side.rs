//! Waiting for several futures together in the calling task, so that they
//! may borrow what the caller holds (a batch's keys are borrowed, not
//! copied: a batch's memory is what bounds a worker's). A deletion round's
//! buckets are erased side by side, and verification reads a batch's
//! tables back side by side.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Runs every future to its end, concurrently, and returns their outputs
/// in the order given.
pub async fn all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut running: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = running.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (future, output) in running.iter_mut().zip(outputs.iter_mut()) {
            if output.is_some() {
                continue;
            }
            match future.as_mut().poll(cx) {
                Poll::Ready(value) => *output = Some(value),
                Poll::Pending => waiting = true,
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|output| output.expect("every future ended before poll_fn returned"))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::Barrier;

    #[tokio::test]
    async fn futures_run_together_and_answer_in_the_order_given() {
        // Each waits for all three to be running: one after another, they
        // would never get past the barrier.
        let barrier = Barrier::new(3);
        let together = [30u64, 10, 20].map(|n| {
            let barrier = &barrier;
            async move {
                barrier.wait().await;
                n
            }
        });
        let answers = tokio::time::timeout(Duration::from_secs(10), super::all(together))
            .await
            .expect("the futures ran one after another");
        assert_eq!(answers, vec![30, 10, 20]);
        let none: Vec<std::future::Ready<u8>> = Vec::new();
        assert!(super::all(none).await.is_empty());
    }
}
