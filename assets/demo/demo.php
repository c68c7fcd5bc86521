<?php
// The PHP demo (run with USE_ZEND_DTRACE=1, as scripts/demo does, so its function and compile
// probes fire): renders a small page in a loop, includes a fresh template now and then, throws
// and catches, and warns. Runs until killed.

class NotFound extends Exception {}

class Catalog {
    private array $items = [];

    public function add(string $name, int $price): void {
        $this->items[$name] = $price;
    }

    public function price(string $name): int {
        if (!isset($this->items[$name])) {
            throw new NotFound($name);
        }
        return $this->items[$name];
    }
}

function render(Catalog $catalog, array $names): string {
    $rows = [];
    foreach ($names as $name) {
        try {
            $rows[] = sprintf('%s: %d', $name, $catalog->price($name));
        } catch (NotFound $e) {
            $rows[] = "$name: sold out";
        }
    }
    return implode("\n", $rows);
}

$templates = sys_get_temp_dir() . '/ustat-demo-php-' . getmypid();
@mkdir($templates);
$catalog = new Catalog();
for ($i = 0; $i < 50; $i++) {
    $catalog->add("item$i", $i * 3);
}
for ($tick = 1; ; $tick++) {
    $names = array_map(fn ($i) => 'item' . random_int(0, 60), range(1, 200));
    render($catalog, $names);
    if ($tick % 5 === 0) {
        $file = "$templates/template_$tick.php";
        file_put_contents($file, "<?php return 'template $tick';\n");
        include $file;
    }
    if ($tick % 7 === 0) {
        trigger_error("slow render at tick $tick", E_USER_WARNING);
    }
    usleep(500000);
}
