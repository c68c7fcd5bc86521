import java.util.ArrayList;
import java.util.List;

/**
 * A small, busy JVM for ustat's demo: it allocates (so young GCs happen), loads a class through
 * a new class loader every second, starts short-lived threads, calls methods all the time, and
 * asks for a full GC every five seconds. Run it with -XX:+ExtendedDTraceProbes to see method
 * calls and allocations too.
 */
public class Demo {
    static volatile long sink;

    static long fib(int n) {
        return n < 2 ? n : fib(n - 1) + fib(n - 2);
    }

    static final class Loader extends ClassLoader {
        Class<?> load(byte[] bytes) {
            return defineClass("DemoPlugin", bytes, 0, bytes.length);
        }
    }

    public static void main(String[] args) throws Exception {
        byte[] plugin;
        try (var in = Demo.class.getResourceAsStream("DemoPlugin.class")) {
            plugin = in.readAllBytes();
        }
        List<byte[]> retained = new ArrayList<>();
        for (long tick = 0; ; tick++) {
            // Garbage for the young generation, a little of it kept for a while.
            for (int i = 0; i < 200; i++) {
                byte[] chunk = new byte[8 * 1024];
                if (i % 50 == 0) retained.add(chunk);
            }
            if (retained.size() > 400) retained.subList(0, 200).clear();
            sink += fib(18);
            if (tick % 10 == 0) new Loader().load(plugin);
            if (tick % 5 == 0) {
                Thread worker = new Thread(() -> sink += fib(15), "demo-worker-" + tick);
                worker.start();
                worker.join();
            }
            if (tick % 50 == 0) System.gc();
            Thread.sleep(100);
        }
    }
}
