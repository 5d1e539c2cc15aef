/// HTML escaping as the `escape` filter does it (Ruby's `CGI.escapeHTML`: `&<>"'` become `&amp; &lt; &gt; &quot;
/// &#39;`), for code that writes HTML outside a template (the email worker's links, `fleet serve`'s pages).
public enum LiquidHTML {
    public static func escape(_ text: String) -> String {
        HTMLFilters.escapeHTML(text, once: false)
    }
}
