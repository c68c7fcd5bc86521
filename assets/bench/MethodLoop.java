import java.io.BufferedReader;
import java.io.InputStreamReader;

/**
 * Calls a tiny method as fast as it can, for ustat's benchmarks. Run with
 * -XX:+ExtendedDTraceProbes. Commands on stdin, one answer line each:
 *
 *   time N      calls work() N times, five rounds; answers the best round's ns per call
 *   spin MS     calls work() for MS milliseconds; answers the number of calls
 */
public class MethodLoop {
    static long sink;

    static void work(int i) {
        sink += i;
    }

    static long round(int n) {
        long start = System.nanoTime();
        for (int i = 0; i < n; i++) work(i);
        return System.nanoTime() - start;
    }

    public static void main(String[] args) throws Exception {
        for (int i = 0; i < 3; i++) round(200_000);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        System.out.println("ready " + ProcessHandle.current().pid());
        String line;
        while ((line = in.readLine()) != null) {
            String[] words = line.trim().split(" ");
            long n = Long.parseLong(words[1]);
            if (words[0].equals("time")) {
                long best = Long.MAX_VALUE;
                for (int r = 0; r < 5; r++) best = Math.min(best, round((int) n));
                System.out.println(String.valueOf((double) best / n));
            } else {
                long end = System.nanoTime() + n * 1_000_000L;
                long calls = 0;
                while (System.nanoTime() < end) {
                    for (int i = 0; i < 1000; i++) work(i);
                    calls += 1000;
                }
                System.out.println(String.valueOf(calls));
            }
        }
    }
}
