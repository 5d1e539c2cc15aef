# Renders one golden-liquid benchmark fixture (DIR/data.json, DIR/templates/index.liquid and the partials
# next to it) N times with Shopify's Ruby Liquid and prints renders/s, and whether the output equals
# DIR/expected_result.txt ("match", "match except the final newline" or "mismatch"). `"now" | date` sees 2025-06-01 12:00 UTC (the year the expected results were made).
#
# Usage: ruby ruby_fixture.rb FIXTURE_DIR [N]
require 'liquid'; require 'json'

class Time
  class << self
    alias_method :fleet_real_now, :now
    def now = Time.utc(2025, 6, 1, 12, 0, 0)
  end
end

# Partials by file name (`include "header.liquid"`), read once: LocalFileSystem rejects names with a dot.
class FixtureFileSystem
  def initialize(dir) = (@dir = dir; @sources = {})
  def read_template_file(name)
    name = "#{name}.liquid" unless name.end_with?(".liquid")
    @sources[name] ||= File.read(File.join(@dir, name))
  end
end

dir = ARGV[0] or abort "usage: ruby ruby_fixture.rb FIXTURE_DIR [N]"
n = (ARGV[1] || "1000").to_i
templates = File.join(dir, "templates")
Liquid::Template.file_system = FixtureFileSystem.new(templates)
t = Liquid::Template.parse(File.read(File.join(templates, "index.liquid")))
data = JSON.parse(File.read(File.join(dir, "data.json")))
expected = File.binread(File.join(dir, "expected_result.txt"))
first = t.render(data).b
# expected_result.txt files of 001 and 002 end with a newline their templates do not print.
status = first == expected ? "match" : first.chomp == expected.chomp ? "match except the final newline" : "mismatch"
bytes = 0
t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
n.times { bytes += t.render(data).bytesize }
dt = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
puts "ruby-liquid #{Liquid::VERSION}: #{(n / dt).round} renders/s (#{n} renders, #{bytes} bytes, #{status})"
