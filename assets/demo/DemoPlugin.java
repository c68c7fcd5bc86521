/** Loaded again and again by Demo, each time through a new class loader. */
public class DemoPlugin {
    public String name() {
        return "plugin";
    }
}
