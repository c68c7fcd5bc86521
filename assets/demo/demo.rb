# The Ruby demo: a small order book that allocates, raises and requires, with a TracePoint
# on :call and :return switched on every other second so the flow has Ruby methods to show
# (Ruby fires its method probes only while one is enabled). Runs until killed.
require "tmpdir"

class Order
  attr_reader :price, :quantity

  def initialize(price, quantity)
    @price = price
    @quantity = quantity
  end
end

class OutOfStock < StandardError; end

class Book
  def initialize
    @orders = []
  end

  def add(order)
    @orders << order
    @orders.shift if @orders.size > 10_000
  end

  def fill(quantity)
    raise OutOfStock, "only #{@orders.size} orders" if quantity > @orders.size

    @orders.first(quantity).sum(&:price)
  end
end

plugins = Dir.mktmpdir("ustat-demo-ruby")
book = Book.new
tick = 0
tracing = TracePoint.new(:call, :return) {}
loop do
  tick += 1
  tick.even? ? tracing.enable : tracing.disable
  2_000.times { |i| book.add(Order.new(i % 97, i % 7)) }
  begin
    book.fill(rand(20_000))
  rescue OutOfStock
    nil
  end
  # A fresh plugin file to require now and then.
  if (tick % 5).zero?
    path = File.join(plugins, "plugin_#{tick}.rb")
    File.write(path, "# plugin #{tick}\n")
    require path
  end
  GC.start if (tick % 3).zero?
  sleep 0.5
end
