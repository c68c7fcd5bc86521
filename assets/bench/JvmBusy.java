import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Spins in one Java method, for the JVM sampling benchmark: its throughput with and without a
 * sampler watching is what sampling costs it. round() is 24 steps of arithmetic per loop turn,
 * several hundred bytes of bytecode, above the JIT's inlining limit (FreqInlineSize, 325
 * bytes), so it keeps its own frame, interpreted at first and JIT-compiled once warm; a
 * sampler walks it either way. Prints "ready" and spins in a thread of its own from then on;
 * commands on stdin, one answer line each:
 *
 *   count       answers the rounds finished since the last count (or the start)
 *   quit        answers ok and exits
 */
public class JvmBusy {
    static final AtomicLong rounds = new AtomicLong();
    static volatile long sink;

    /** One round: 1,000 turns of 24 steps in its own frame; too large to inline. */
    static long round(long x) {
        for (int i = 0; i < 1_000; i++) {
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
            x = x * 6364136223846793005L + 1442695040888963407L; x ^= x >>> 29;
        }
        return x;
    }

    static void spin() {
        long x = 1;
        while (true) {
            x = round(x);
            sink = x;
            rounds.incrementAndGet();
        }
    }

    public static void main(String[] args) throws Exception {
        Thread spinner = new Thread(JvmBusy::spin, "spinner");
        spinner.setDaemon(true);
        spinner.start();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        System.out.println("ready");
        for (String line; (line = in.readLine()) != null; ) {
            switch (line.trim()) {
                case "count": System.out.println(rounds.getAndSet(0)); break;
                case "quit": System.out.println("ok"); return;
                default: System.out.println("unknown " + line.trim());
            }
        }
    }
}
