package import NIOCore

/// An event loop as a task executor: jobs run as the loop's tasks. Code that prefers it runs
/// where the loop's channels read and write (an HTTP connection's handlers, a PostgreSQL
/// connection's statements), without a thread hop to reach them.
package final class EventLoopTaskExecutor: _Concurrency.TaskExecutor {
    package let eventLoop: any EventLoop

    package init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
