// Peer benchmark: Guava's RateLimiter, the in-process limiter Java services use.
// Measures ns per tryAcquire() for one hot limiter (mostly denied at 1,000,000/s, and
// an allow-heavy one at 10^9/s) and for a prebuilt read-only HashMap of 100k limiters
// (lookup by string key + tryAcquire), with 1 and 2 threads, at bench_core's rate
// (Guava's bursty limiter stores one second of permits), after a warm-up that lets
// the JIT compile the loop and a GC. Guava reads its own clock (no time-passed rows).
// One JSON object per line: wall time / total calls across threads (Google
// Benchmark's real_time); a 2-thread case adds how far apart its two cores were
// (round_trip_ns, before and after it: see roundTrip).

import com.google.common.util.concurrent.RateLimiter;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;

public final class GuavaPeer {
    private static final int BATCH = 4096;

    private interface Body {
        long run(int worker, int n);
    }

    private static String keyName(int i) {
        return "ip:10." + ((i >> 16) & 255) + "." + ((i >> 8) & 255) + "." + (i & 255);
    }

    private static long[] measure(int threads, double seconds, Body body) throws InterruptedException {
        final long deadline = System.nanoTime() + (long) (seconds * 1e9);
        final long[] ops = new long[threads];
        final long[] allowed = new long[threads];
        List<Thread> pool = new ArrayList<>();
        long start = System.nanoTime();
        for (int w = 0; w < threads; w++) {
            final int worker = w;
            Thread t = new Thread(() -> {
                long myOps = 0, myAllowed = 0;
                while (System.nanoTime() < deadline) {
                    myAllowed += body.run(worker, BATCH);
                    myOps += BATCH;
                }
                ops[worker] = myOps;
                allowed[worker] = myAllowed;
            });
            pool.add(t);
            t.start();
        }
        for (Thread t : pool) t.join();
        long wall = System.nanoTime() - start;
        long totalOps = 0, totalAllowed = 0;
        for (int w = 0; w < threads; w++) {
            totalOps += ops[w];
            totalAllowed += allowed[w];
        }
        return new long[] {totalOps, totalAllowed, wall};
    }

    // How far apart two busy threads' cores are: the ns for a cache line to go from one
    // to the other and back, the median of 5 batches of 400 hand-overs (as bench_core's
    // core_distance). A VM's host may place its vCPUs near each other or far apart and
    // move them within seconds; a 2-thread case's time follows that.
    private static double roundTrip() throws InterruptedException {
        final int batches = 5, handOvers = 400;
        final AtomicLong baton = new AtomicLong();  // odd: this thread's turn done
        Thread other = new Thread(() -> {
            for (long k = 0; k < (long) batches * handOvers; k++) {
                while (baton.get() != 2 * k + 1) Thread.onSpinWait();
                baton.set(2 * k + 2);
            }
        });
        other.start();
        double[] means = new double[batches];
        for (int b = 0; b < batches; b++) {
            long start = System.nanoTime();
            for (long k = (long) b * handOvers; k < (long) (b + 1) * handOvers; k++) {
                baton.set(2 * k + 1);
                while (baton.get() != 2 * k + 2) Thread.onSpinWait();
            }
            means[b] = (double) (System.nanoTime() - start) / handOvers;
        }
        other.join();
        java.util.Arrays.sort(means);
        return means[batches / 2];
    }

    public static void main(String[] args) throws InterruptedException {
        double seconds = 1.0, warmup = 1.0;
        int keys = 100_000;
        double rate = 1e6;
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--seconds": seconds = Double.parseDouble(args[i + 1]); break;
                case "--warmup": warmup = Double.parseDouble(args[i + 1]); break;
                case "--keys": keys = Integer.parseInt(args[i + 1]); break;
                case "--rate": rate = Double.parseDouble(args[i + 1]); break;
                default:
                    System.err.println("guava-peer: unknown option " + args[i]);
                    System.exit(2);
            }
        }
        if (args.length % 2 != 0 || seconds <= 0 || keys <= 0 || warmup < 0 || rate <= 0) {
            System.err.println("guava-peer: usage: [--seconds S] [--warmup S] [--keys N] [--rate R]");
            System.exit(2);
        }

        final RateLimiter hot = RateLimiter.create(rate);
        Body single = (w, n) -> {
            long ok = 0;
            for (int i = 0; i < n; i++) if (hot.tryAcquire()) ok++;
            return ok;
        };
        final RateLimiter hotAllow = RateLimiter.create(1e9);
        Body singleAllow = (w, n) -> {
            long ok = 0;
            for (int i = 0; i < n; i++) if (hotAllow.tryAcquire()) ok++;
            return ok;
        };

        final Map<String, RateLimiter> limiters = new HashMap<>(keys * 2);
        final String[] names = new String[keys];
        for (int i = 0; i < keys; i++) {
            names[i] = keyName(i);
            limiters.put(names[i], RateLimiter.create(rate));
        }
        // Each thread walks its own random permutation of the prebuilt keys (Java
        // caches a String's hash, so lookups skip hashing: favourable to the peer).
        final String[][] orders = new String[2][keys];
        for (int w = 0; w < 2; w++) {
            Random r = new Random(42 + w);
            int[] perm = new int[keys];
            for (int i = 0; i < keys; i++) perm[i] = i;
            for (int i = keys - 1; i > 0; i--) {
                int j = r.nextInt(i + 1);
                int tmp = perm[i]; perm[i] = perm[j]; perm[j] = tmp;
            }
            for (int i = 0; i < keys; i++) orders[w][i] = names[perm[i]];
        }
        final int[] pos = new int[2 * 16];
        Body many = (w, n) -> {
            long ok = 0;
            String[] order = orders[w];
            int p = pos[w * 16];
            for (int i = 0; i < n; i++) {
                if (limiters.get(order[p]).tryAcquire()) ok++;
                if (++p == order.length) p = 0;
            }
            pos[w * 16] = p;
            return ok;
        };

        String[] caseNames = {"single_key", "single_key_allow", "keys_100k"};
        Body[] bodies = {single, singleAllow, many};
        for (int c = 0; c < bodies.length; c++) {
            for (int threads = 1; threads <= 2; threads++) {
                measure(threads, warmup, bodies[c]);
                if (threads == 2) roundTrip();  // compiled before it counts
                System.gc();
                double before = threads == 2 ? roundTrip() : 0;
                long[] r = measure(threads, seconds, bodies[c]);
                String trips = threads == 2
                    ? String.format(java.util.Locale.ROOT, ",\"round_trip_ns\":[%.1f,%.1f]",
                                    before, roundTrip())
                    : "";
                System.out.printf(java.util.Locale.ROOT,
                    "{\"peer\":\"guava\",\"case\":\"%s\",\"threads\":%d,\"ns_per_op\":%.3f,"
                        + "\"ops\":%d,\"allowed\":%d,\"seconds\":%.6f%s}%n",
                    caseNames[c], threads, (double) r[2] / r[0], r[0], r[1], r[2] / 1e9, trips);
            }
        }
    }
}
