# Renders the shared newsletter template once per profile with Shopify's Ruby Liquid (Debian: ruby-liquid),
# exactly as ../shared/peers/liquid/render_ruby.rb does, and writes every render to OUT for a byte-for-byte
# comparison (`fleet bench liquid` and the Liquid integration test read it).
#
# Usage: ruby ruby_newsletter_dump.rb TEMPLATE PROFILES.ndjson OUT
# OUT holds, per profile in input order: "<profile id>\t<byte count>\n", the render's bytes, then "\n".
require 'liquid'; require 'json'
template_path, profiles_path, out_path = ARGV
abort "usage: ruby ruby_newsletter_dump.rb TEMPLATE PROFILES.ndjson OUT" unless out_path
t = Liquid::Template.parse(File.read(template_path))
campaign = { "id" => "spring-sale", "subject" => "[name], your spring picks" }
count = 0
File.open(out_path, "wb") do |out|
  File.foreach(profiles_path) do |line|
    next if line.strip.empty?
    profile = JSON.parse(line)
    text = t.render("profile" => profile, "campaign" => campaign).b
    out.write("#{profile['id']}\t#{text.bytesize}\n", text, "\n")
    count += 1
  end
end
puts "ruby-liquid #{Liquid::VERSION}: wrote #{count} renders to #{out_path}"
