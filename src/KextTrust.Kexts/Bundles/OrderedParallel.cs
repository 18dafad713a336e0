using System.Runtime.ExceptionServices;

namespace KextTrust.Kexts.Bundles;

/// <summary>
/// Runs independent work items on every core and hands the results to a consumer in input order, as soon as each
/// is next in line: a scan can write item 1 while item 500 is still being read. The calling thread works too and is
/// the only one that calls the consumer, so the consumer needs no locking (e.g. a JSON writer).
/// </summary>
/// <remarks>
/// Plain threads pulling indices from a shared counter: no PLINQ or task machinery to start (or JIT) for a
/// short-lived command-line process. The first exception of any item is rethrown on the calling thread after
/// every worker has stopped.
/// </remarks>
internal static class OrderedParallel
{
    /// <summary>Computes <paramref name="work"/> for each item on up to <paramref name="maxThreads"/> threads (default: one per core); calls <paramref name="consume"/> on the calling thread in input order.</summary>
    public static void Run<TIn, TOut>(IReadOnlyList<TIn> items, Func<TIn, TOut> work, Action<int, TOut> consume, int maxThreads = 0)
        where TOut : class
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentNullException.ThrowIfNull(work);
        ArgumentNullException.ThrowIfNull(consume);
        var state = new State<TIn, TOut>(items, work);
        var threads = Math.Min(maxThreads > 0 ? maxThreads : Environment.ProcessorCount, items.Count) - 1;
        var workers = new Thread[Math.Max(threads, 0)];
        for (var i = 0; i < workers.Length; i++)
        {
            workers[i] = new Thread(state.WorkLoop) { IsBackground = true, Name = "kextrust worker" };
            workers[i].Start();
        }
        var next = 0;
        try
        {
            // The caller works as well, and after each item passes on every result that is next in line.
            while (state.TryWorkOne())
            {
                next = state.Drain(next, consume);
            }
        }
        finally
        {
            foreach (var w in workers)
            {
                w.Join();
            }
        }
        state.ThrowIfFailed();
        state.Drain(next, consume);
    }

    private sealed class State<TIn, TOut>(IReadOnlyList<TIn> items, Func<TIn, TOut> work)
        where TOut : class
    {
        private readonly TOut?[] _results = new TOut?[items.Count];
        private int _claimed = -1;
        private ExceptionDispatchInfo? _failure;

        public void WorkLoop()
        {
            while (TryWorkOne())
            {
            }
        }

        /// <summary>Claims and computes one item; false when none is left or some item failed.</summary>
        public bool TryWorkOne()
        {
            if (Volatile.Read(ref _failure) is not null)
            {
                return false;
            }
            var i = Interlocked.Increment(ref _claimed);
            if (i >= items.Count)
            {
                return false;
            }
            try
            {
                Volatile.Write(ref _results[i], work(items[i]));
                return true;
            }
            catch (Exception ex)
            {
                Interlocked.CompareExchange(ref _failure, ExceptionDispatchInfo.Capture(ex), null);
                return false;
            }
        }

        /// <summary>Passes on the ready results from <paramref name="next"/> on; returns the first index not yet ready.</summary>
        public int Drain(int next, Action<int, TOut> consume)
        {
            while (next < _results.Length && Volatile.Read(ref _results[next]) is { } ready)
            {
                _results[next] = null; // consumed: let the collector have it
                consume(next, ready);
                next++;
            }
            return next;
        }

        public void ThrowIfFailed() => _failure?.Throw();
    }
}
