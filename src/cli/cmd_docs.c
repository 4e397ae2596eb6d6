/* nnplug docs DIR: a static HTML site with one "card" page per layer kind,
 * rendered from the document `nnplug plugins --json` prints, so the site
 * and the JSON never disagree. Plain HTML and one style sheet: no scripts. */
#include "cli/cli.h"
#include "nnplug/io.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char docs_usage[] =
    "usage: nnplug docs DIR\n"
    "Writes a static HTML site describing every layer kind the plugins provide:\n"
    "DIR/index.html lists the kinds by plugin; DIR/KIND.html is one card per kind\n"
    "(its parameters with type, default, allowed values and doc; its input and\n"
    "output tensors; the wrappers that can wrap it; its ONNX operator and opsets;\n"
    "its plugin file); DIR/style.css styles them for phones and desktops. The\n"
    "data is what 'nnplug plugins --json' prints. DIR is created if missing and\n"
    "each file is replaced atomically.\n";

static const char docs_css[] =
    ":root{--ink:#1b2230;--muted:#5a6474;--line:#e2e6ee;--bg:#f4f6fa;--card:#fff;"
    "--accent:#2454c6;--chip:#eef2fb;--code:#f1f3f7;color-scheme:light dark}\n"
    "@media (prefers-color-scheme:dark){:root{--ink:#e6e9ef;--muted:#9aa3b2;--line:#2c3340;"
    "--bg:#12161d;--card:#1a1f28;--accent:#8cb0ff;--chip:#243049;--code:#222936}}\n"
    "*{box-sizing:border-box}\n"
    "html{-webkit-text-size-adjust:100%;text-size-adjust:100%}\n"
    "body{margin:0;background:var(--bg);color:var(--ink);line-height:1.5;"
    "font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,\"Noto Sans\",sans-serif}\n"
    "a{color:var(--accent)}\n"
    "code{font-family:ui-monospace,\"SFMono-Regular\",\"DejaVu Sans Mono\",Menlo,monospace;"
    "font-size:.9em;overflow-wrap:anywhere}\n"
    "header.site,footer.site,main{max-width:72rem;margin:0 auto;padding:0 1rem}\n"
    "header.site{padding-top:1rem;padding-bottom:.5rem;font-size:.9rem}\n"
    "header.site a{text-decoration:none;font-weight:600}\n"
    "footer.site{padding-top:1.5rem;padding-bottom:2rem;color:var(--muted);font-size:.85rem}\n"
    "h1{font-size:1.9rem;line-height:1.2;margin:.2rem 0 .5rem;overflow-wrap:anywhere}\n"
    "h2{font-size:1.25rem;line-height:1.3;margin:0 0 .5rem}\n"
    "h3{font-size:.75rem;letter-spacing:.08em;text-transform:uppercase;color:var(--muted);"
    "margin:1rem 0 .25rem}\n"
    ".lede{color:var(--muted);margin:0 0 1.5rem}\n"
    ".card{background:var(--card);border:1px solid var(--line);border-radius:14px;"
    "box-shadow:0 1px 3px rgba(20,30,50,.08);overflow:hidden}\n"
    ".card>header,.card>section{padding:1.25rem 1.5rem}\n"
    ".card>section{border-top:1px solid var(--line)}\n"
    ".eyebrow{margin:0;color:var(--muted);font-size:.85rem}\n"
    ".purpose{margin:0;font-size:1.1rem}\n"
    ".tags,.choices{list-style:none;margin:.75rem 0 0;padding:0;display:flex;flex-wrap:wrap;"
    "gap:.35rem}\n"
    ".tags li{background:var(--chip);border-radius:999px;padding:.1rem .65rem;font-size:.85rem}\n"
    ".choices{margin:0;gap:.25rem}\n"
    ".choices li code{background:var(--code);border-radius:4px;padding:0 .3rem}\n"
    ".ty{display:inline-block;font:600 .78rem/1.6 ui-monospace,\"DejaVu Sans Mono\",monospace;"
    "padding:0 .45rem;border-radius:5px;background:var(--chip);white-space:nowrap}\n"
    ".t-int,.t-float,.t-ints,.t-shape{background:#dbe7ff;color:#1c3f8f}\n"
    ".t-bool{background:#eadcff;color:#54228f}\n"
    ".t-string{background:#d8f3e3;color:#145c34}\n"
    ".t-initializer,.t-regularizer,.t-constraint{background:#ffedd1;color:#7a4300}\n"
    ".t-layer{background:#d4f1f4;color:#0b5961}\n"
    ".t-tensor{background:#ffdfe6;color:#8a1538}\n"
    ".null{display:inline-block;font-size:.72rem;color:var(--muted);border:1px solid var(--line);"
    "border-radius:5px;padding:0 .35rem;margin-left:.25rem;white-space:nowrap}\n"
    ".none{color:var(--muted)}\n"
    "table.ports{width:100%;border-collapse:collapse;font-size:.95rem}\n"
    ".ports th{text-align:left;font-size:.75rem;text-transform:uppercase;letter-spacing:.05em;"
    "color:var(--muted);font-weight:600;padding:.4rem .6rem;border-bottom:2px solid var(--line)}\n"
    ".ports td{padding:.55rem .6rem;border-bottom:1px solid var(--line);vertical-align:top}\n"
    ".ports tr:last-child td{border-bottom:0}\n"
    ".ports td.name>code{font-weight:600;font-size:.95rem;overflow-wrap:normal;"
    "white-space:nowrap}\n"
    ".ports td.type{white-space:nowrap}\n"
    ".ports .doc{color:var(--muted);margin-top:.1rem}\n"
    "ul.wrappers{margin:.25rem 0 0;padding-left:1.2rem}\n"
    /* Wide screens: fixed columns, so the type column lines up in every table. */
    "@media (min-width:64rem){table.ports{table-layout:fixed}\n"
    ".params th:nth-child(2){width:12.5rem}.params th:nth-child(3){width:11rem}\n"
    ".params th:nth-child(4){width:14rem}.ports:not(.params) th:nth-child(2){width:37.5rem}}\n"
    ".ports td.default code{background:var(--code);border-radius:4px;padding:0 .3rem}\n"
    "dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1.25rem;margin:0}\n"
    "dl.facts dt{color:var(--muted);font-size:.9rem}\n"
    "dl.facts dd{margin:0;min-width:0}\n"
    "ul.kinds{list-style:none;margin:0 0 1.75rem;padding:0;display:grid;gap:.75rem;"
    "grid-template-columns:repeat(auto-fill,minmax(17rem,1fr))}\n"
    "ul.kinds a{display:block;height:100%;text-decoration:none;color:inherit;padding:.9rem 1rem;"
    "background:var(--card);border:1px solid var(--line);border-radius:12px}\n"
    "ul.kinds a:hover,ul.kinds a:focus{border-color:var(--accent)}\n"
    ".kname{display:block;font-weight:650;color:var(--accent);font-size:1.05rem}\n"
    ".kdoc{display:block;margin:.2rem 0 .4rem;font-size:.92rem}\n"
    ".kmeta{display:block;color:var(--muted);font-size:.8rem}\n"
    "h2.plugin{text-transform:none;letter-spacing:0;font-size:1rem;color:var(--ink)}\n"
    "h2.plugin code{color:var(--muted);font-weight:400;font-size:.8rem}\n"
    "@media (max-width:42rem){\n"
    "h1{font-size:1.6rem}\n"
    ".card>header,.card>section{padding:1rem}\n"
    ".ports thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}\n"
    "table.ports,.ports tbody{display:block}\n"
    ".ports tr{display:flex;flex-wrap:wrap;align-items:baseline;gap:.3rem .6rem;"
    "padding:.75rem 0;border-bottom:1px solid var(--line)}\n"
    ".ports tr:last-child{border-bottom:0}\n"
    ".ports td{display:block;padding:0;border:0;min-width:0}\n"
    ".ports td.name{display:contents}\n"
    ".ports td.name>code{max-width:100%;white-space:normal;overflow-wrap:anywhere}\n"
    ".ports .doc{flex:1 1 100%;order:1;margin:0}\n"
    ".ports td[data-label]{flex:1 1 100%;order:2;display:flex;gap:.75rem}\n"
    ".ports td.allowed.any{display:none}\n"
    ".ports td[data-label]::before{content:attr(data-label);flex:0 0 4.5rem;color:var(--muted);"
    "font-size:.75rem;text-transform:uppercase;letter-spacing:.05em;padding-top:.15rem}\n"
    "dl.facts{grid-template-columns:1fr;gap:.1rem}\n"
    "dl.facts dd{margin-bottom:.6rem}\n"
    "}\n";

/* ------------------------------------------------------------------ */
/* Reading the schema document                                         */
/* ------------------------------------------------------------------ */

static const char *str_of(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static json_int_t int_of(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static int is_true(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* KIND.html; kind names are identifiers, so only "index" needs another name. */
static void page_name(const char *kind, char *buf, size_t size)
{
    snprintf(buf, size, "%s%s.html", strcmp(kind, "index") == 0 ? "kind-" : "", kind);
}

/* A kind can be wrapped when it takes one input: a wrapper hands it its own. */
static int wrappable(const json_t *kind)
{
    return int_of(json_object_get(kind, "inputs"), "min") <= 1;
}

/* ------------------------------------------------------------------ */
/* Writing HTML                                                        */
/* ------------------------------------------------------------------ */

static void esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* The fewest digits that read back as v (0.99, not 0.98999999999999999),
 * without an exponent from 1e-4 to 1e16 (100.0, not 1e+02). */
static void put_number(FILE *f, double v, int real_suffix)
{
    char s[400];
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(s, sizeof s, "%.*g", prec, v);
        if (strtod(s, NULL) == v)
            break;
    }
    snprintf(s, sizeof s, "%.*g", prec, v);
    double mag = v < 0 ? -v : v;
    const char *e = strchr(s, 'e');
    if (e && mag >= 1e-4 && mag < 1e16) {
        int decimals = prec - 1 - atoi(e + 1);
        snprintf(s, sizeof s, "%.*f", decimals > 0 ? decimals : 0, v);
    }
    fputs(s, f);
    if (real_suffix && !strpbrk(s, ".eEn"))
        fputs(".0", f);
}

/* A JSON value as a person reads it, escaped: {"class_name": "Ones",
 * "config": {}} is Ones, with a config Name(key=value, ...). */
static void put_value(FILE *f, const json_t *v)
{
    const char *key;
    json_t *e;
    size_t i = 0;
    const json_t *cls = json_object_get(v, "class_name");
    if (json_is_string(cls)) {
        esc(f, json_string_value(cls));
        const json_t *cfg = json_object_get(v, "config");
        if (json_object_size(cfg) == 0)
            return;
        fputc('(', f);
        json_object_foreach((json_t *)cfg, key, e) {
            fputs(i++ ? ", " : "", f);
            esc(f, key);
            fputc('=', f);
            put_value(f, e);
        }
        fputc(')', f);
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        fputc('{', f);
        json_object_foreach((json_t *)v, key, e) {
            fputs(i++ ? ", " : "", f);
            esc(f, key);
            fputs(": ", f);
            put_value(f, e);
        }
        fputc('}', f);
        break;
    case JSON_ARRAY:
        fputc('[', f);
        json_array_foreach(v, i, e) {
            fputs(i ? ", " : "", f);
            put_value(f, e);
        }
        fputc(']', f);
        break;
    case JSON_STRING:
        fputs("&quot;", f);
        esc(f, json_string_value(v));
        fputs("&quot;", f);
        break;
    case JSON_INTEGER: fprintf(f, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: put_number(f, json_real_value(v), 1); break;
    case JSON_TRUE: fputs("true", f); break;
    case JSON_FALSE: fputs("false", f); break;
    case JSON_NULL: fputs("null", f); break;
    }
}

static int has_bounds(const json_t *p)
{
    return json_object_get(p, "min") || json_object_get(p, "max") ||
           json_array_size(json_object_get(p, "choices")) > 0;
}

/* "&gt; 0", "≥ 1", "[0, 1)" or the choices; a dash when anything goes. */
static void put_allowed(FILE *f, const json_t *p)
{
    const json_t *lo = json_object_get(p, "min"), *hi = json_object_get(p, "max");
    const json_t *choices = json_object_get(p, "choices");
    int lo_x = is_true(p, "min_exclusive"), hi_x = is_true(p, "max_exclusive");
    if (lo && hi) {
        fputs(lo_x ? "(" : "[", f);
        put_number(f, json_number_value(lo), 0);
        fputs(", ", f);
        put_number(f, json_number_value(hi), 0);
        fputs(hi_x ? ")" : "]", f);
    } else if (lo || hi) {
        fputs(lo ? (lo_x ? "&gt; " : "\xe2\x89\xa5 ") : (hi_x ? "&lt; " : "\xe2\x89\xa4 "), f);
        put_number(f, json_number_value(lo ? lo : hi), 0);
    } else if (json_array_size(choices) > 0) {
        size_t i;
        json_t *c;
        fputs("<ul class=\"choices\" aria-label=\"one of\">", f);
        json_array_foreach(choices, i, c) {
            fputs("<li><code>", f);
            esc(f, json_string_value(c));
            fputs("</code></li>", f);
        }
        fputs("</ul>", f);
    } else {
        fputs("<span class=\"none\">\xe2\x80\x94</span>", f);
    }
}

static void page_head(FILE *f, const char *title, const char *description)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<title>", f);
    esc(f, title);
    fputs("</title>\n<meta name=\"description\" content=\"", f);
    esc(f, description);
    fputs("\">\n<link rel=\"stylesheet\" href=\"style.css\">\n</head>\n<body>\n"
          "<header class=\"site\"><a href=\"index.html\">nnplug layer kinds</a></header>\n"
          "<main>\n", f);
}

static void page_foot(FILE *f)
{
    fputs("</main>\n<footer class=\"site\">Generated by nnplug " NNP_VERSION_STRING
          " from the plugins it loaded.</footer>\n</body>\n</html>\n", f);
}

/* ------------------------------------------------------------------ */
/* A kind's card                                                       */
/* ------------------------------------------------------------------ */

/* The parameters a card shows: all but the keys taken only at their default. */
static size_t card_params(const json_t *kind)
{
    size_t i, n = 0;
    json_t *p;
    json_array_foreach(json_object_get(kind, "params"), i, p)
        n += !is_true(p, "only_default");
    return n;
}

static void param_row(FILE *f, const json_t *p)
{
    const char *name = str_of(p, "name"), *type = str_of(p, "type");
    fputs("<tr id=\"param-", f);
    esc(f, name);
    fputs("\" data-param=\"", f);
    esc(f, name);
    fputs("\"><td class=\"name\"><code>", f);
    esc(f, name);
    fputs("</code><div class=\"doc\">", f);
    esc(f, str_of(p, "doc"));
    fputs("</div></td><td class=\"type\"><span class=\"ty t-", f);
    esc(f, type);
    fputs("\">", f);
    esc(f, type);
    fputs("</span>", f);
    if (is_true(p, "nullable"))
        fputs("<span class=\"null\" title=\"null is accepted\">nullable</span>", f);
    fputs("</td><td class=\"default\" data-label=\"Default\"><code>", f);
    put_value(f, json_object_get(p, "default"));
    fputs("</code></td><td class=\"allowed", f);
    fputs(has_bounds(p) ? "\"" : " any\"", f);
    fputs(" data-label=\"Allowed\">", f);
    put_allowed(f, p);
    fputs("</td></tr>\n", f);
}

/* One row of the tensor tables: name, type, what it is (HTML, trusted). */
static void port_row(FILE *f, const char *name, const char *type, const char *html_doc)
{
    fprintf(f, "<tr data-port=\"%s\"><td class=\"name\"><code>%s</code><div class=\"doc\">%s"
            "</div></td><td class=\"type\"><span class=\"ty t-%s\">%s</span></td></tr>\n",
            name, name, html_doc, type, type);
}

/* Keys accepted only at their default (tf.keras features nnplug lacks) are
 * not inputs of the card; a line under the table names them. */
static void only_default_line(FILE *f, const json_t *params)
{
    size_t i, n = 0;
    json_t *p;
    json_array_foreach(params, i, p) {
        if (!is_true(p, "only_default"))
            continue;
        fputs(n++ ? ", <code>" : "<p class=\"none\">Keras keys accepted only at their "
                                 "defaults: <code>", f);
        esc(f, str_of(p, "name"));
        fputs("</code>", f);
    }
    if (n)
        fputs(".</p>\n", f);
}

static void inputs_section(FILE *f, const json_t *kind)
{
    const json_t *params = json_object_get(kind, "params");
    size_t i;
    json_t *p;
    fputs("<section class=\"inputs\" aria-labelledby=\"inputs\">\n<h2 id=\"inputs\">Inputs</h2>\n"
          "<h3>Parameters</h3>\n", f);
    if (card_params(kind) == 0) {
        fputs("<p class=\"none\">No parameters.</p>\n", f);
    } else {
        fputs("<table class=\"ports params\">\n<thead><tr><th>Parameter</th><th>Type</th>"
              "<th>Default</th><th>Allowed</th></tr></thead>\n<tbody>\n", f);
        json_array_foreach(params, i, p)
            if (!is_true(p, "only_default"))
                param_row(f, p);
        fputs("</tbody>\n</table>\n", f);
    }
    only_default_line(f, params);
    const json_t *in = json_object_get(kind, "inputs");
    json_int_t lo = int_of(in, "min"), hi = int_of(in, "max");
    char doc[160];
    if (lo == hi)
        snprintf(doc, sizeof doc, "%s%" JSON_INTEGER_FORMAT " tensor%s", lo == 1 ? "" : "exactly ",
                 lo, lo == 1 ? ", the layer&#39;s input" : "s");
    else
        snprintf(doc, sizeof doc, "%" JSON_INTEGER_FORMAT " to %" JSON_INTEGER_FORMAT " tensors",
                 lo, hi);
    fputs("<h3>Tensors</h3>\n<table class=\"ports tensors\">\n<thead><tr><th>Tensor</th>"
          "<th>Type</th></tr></thead>\n<tbody>\n", f);
    port_row(f, hi > 1 ? "inputs" : "input", "tensor", doc);
    fputs("</tbody>\n</table>\n</section>\n", f);
}

/* The output tensor and, for a kind that can be wrapped, the layer itself
 * as the value of a wrapper's layer parameter. */
static void outputs_section(FILE *f, const json_t *kind, const json_t *doc)
{
    fputs("<section class=\"outputs\" aria-labelledby=\"outputs\">\n<h2 id=\"outputs\">Outputs"
          "</h2>\n<table class=\"ports outputs\">\n<thead><tr><th>Output</th><th>Type</th>"
          "</tr></thead>\n<tbody>\n", f);
    port_row(f, "output", "tensor", "1 tensor, the layer&#39;s result");
    size_t i, n = 0;
    json_t *k;
    if (wrappable(kind)) {
        fputs("<tr data-port=\"layer\"><td class=\"name\"><code>layer</code><div class=\"doc\">"
              "the layer instance, which a wrapper kind takes as its <code>layer</code> "
              "parameter", f);
        json_array_foreach(doc, i, k) {
            if (!is_true(k, "wrapper"))
                continue;
            char page[300];
            page_name(str_of(k, "name"), page, sizeof page);
            fputs(n++ ? "<li>" : ":<ul class=\"wrappers\"><li>", f);
            fputs("<a class=\"wrapper\" href=\"", f);
            esc(f, page);
            fputs("\">", f);
            esc(f, str_of(k, "name"));
            fputs("</a> \xe2\x80\x94 ", f);
            esc(f, str_of(k, "doc"));
            fputs("</li>", f);
        }
        fputs(n ? "</ul>" : " (no wrapper kind is loaded)", f);
        fputs("</div></td><td class=\"type\"><span class=\"ty t-layer\">layer</span></td>"
              "</tr>\n", f);
    }
    fputs("</tbody>\n</table>\n</section>\n", f);
}

static void interchange_section(FILE *f, const json_t *kind)
{
    const json_t *onnx = json_object_get(kind, "onnx");
    fputs("<section class=\"interchange\" aria-labelledby=\"interchange\">\n"
          "<h2 id=\"interchange\">Interchange</h2>\n<dl class=\"facts\">\n"
          "<dt>ONNX operator</dt><dd class=\"onnx\">", f);
    if (json_is_object(onnx)) {
        const char *domain = str_of(onnx, "domain");
        fputs("<code>", f);
        esc(f, str_of(onnx, "op_type"));
        fputs("</code> in domain <code>", f);
        esc(f, domain[0] ? domain : "ai.onnx");
        fprintf(f, "</code></dd>\n<dt>Opsets</dt><dd class=\"opsets\">reads and writes opsets "
                "%" JSON_INTEGER_FORMAT " to %" JSON_INTEGER_FORMAT "</dd>\n",
                int_of(onnx, "opset_min"), int_of(onnx, "opset_max"));
    } else {
        fputs("no ONNX operator of its own</dd>\n", f);
    }
    fputs("<dt>Plugin</dt><dd class=\"plugin\"><code>", f);
    esc(f, str_of(kind, "plugin"));
    fputs("</code></dd>\n</dl>\n</section>\n", f);
}

static void kind_page(FILE *f, const json_t *kind, const json_t *doc)
{
    const char *name = str_of(kind, "name");
    const json_t *onnx = json_object_get(kind, "onnx");
    size_t n_params = card_params(kind);
    char title[300];
    snprintf(title, sizeof title, "%s \xc2\xb7 nnplug layer kinds", name);
    page_head(f, title, str_of(kind, "doc"));
    fputs("<article class=\"card\">\n<header>\n<p class=\"eyebrow\">", f);
    fputs(is_true(kind, "wrapper") ? "Wrapper kind" : "Layer kind", f);
    fputs(" \xc2\xb7 ", f);
    esc(f, base_name(str_of(kind, "plugin")));
    fputs("</p>\n<h1>", f);
    esc(f, name);
    fputs("</h1>\n<p class=\"purpose\">", f);
    esc(f, str_of(kind, "doc"));
    fputs("</p>\n<ul class=\"tags\">", f);
    if (json_is_object(onnx)) {
        fputs("<li>ONNX ", f);
        esc(f, str_of(onnx, "op_type"));
        fputs("</li>", f);
    }
    fprintf(f, "<li>%zu parameter%s</li></ul>\n</header>\n", n_params, n_params == 1 ? "" : "s");
    inputs_section(f, kind);
    outputs_section(f, kind, doc);
    interchange_section(f, kind);
    fputs("</article>\n", f);
    page_foot(f);
}

/* ------------------------------------------------------------------ */
/* The index                                                           */
/* ------------------------------------------------------------------ */

static int by_name(const void *a, const void *b)
{
    return strcmp(str_of(*(json_t *const *)a, "name"), str_of(*(json_t *const *)b, "name"));
}

static void index_entry(FILE *f, const json_t *kind)
{
    char page[300];
    const json_t *onnx = json_object_get(kind, "onnx");
    size_t n = card_params(kind);
    page_name(str_of(kind, "name"), page, sizeof page);
    fputs("<li><a href=\"", f);
    esc(f, page);
    fputs("\"><span class=\"kname\">", f);
    esc(f, str_of(kind, "name"));
    fputs("</span><span class=\"kdoc\">", f);
    esc(f, str_of(kind, "doc"));
    fputs("</span><span class=\"kmeta\">", f);
    if (json_is_object(onnx)) {
        fputs("ONNX ", f);
        esc(f, str_of(onnx, "op_type"));
    } else {
        fputs("no ONNX operator", f);
    }
    fprintf(f, " \xc2\xb7 %zu parameter%s%s</span></a></li>\n", n, n == 1 ? "" : "s",
            is_true(kind, "wrapper") ? " \xc2\xb7 wrapper" : "");
}

/* Kinds grouped by plugin file (in load order), by name within a plugin. */
static int index_page(FILE *f, const json_t *doc)
{
    size_t n = json_array_size(doc);
    json_t **group = malloc((n ? n : 1) * sizeof *group);
    if (!group)
        return -1;
    page_head(f, "nnplug layer kinds", "Every layer kind the nnplug plugins provide");
    fprintf(f, "<h1>Layer kinds</h1>\n<p class=\"lede\">%zu kind%s from the plugins nnplug "
            "loaded. Each page is a kind&#39;s card: its parameters and tensors in, what it "
            "puts out, and how it travels through ONNX.</p>\n", n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n;) {
        const char *plugin = str_of(json_array_get(doc, i), "plugin");
        size_t m = 0;
        for (; i < n && strcmp(str_of(json_array_get(doc, i), "plugin"), plugin) == 0; i++)
            group[m++] = json_array_get(doc, i);
        qsort(group, m, sizeof *group, by_name);
        fputs("<section>\n<h2 class=\"plugin\">", f);
        esc(f, base_name(plugin));
        fputs(" <code>", f);
        esc(f, plugin);
        fputs("</code></h2>\n<ul class=\"kinds\">\n", f);
        for (size_t j = 0; j < m; j++)
            index_entry(f, group[j]);
        fputs("</ul>\n</section>\n", f);
    }
    page_foot(f);
    free(group);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Files                                                               */
/* ------------------------------------------------------------------ */

/* mkdir -p dir; then dir must be a writable directory. */
static int make_dir(const char *dir)
{
    char *path = strdup(dir);
    struct stat sb;
    if (!path) {
        cli_error("out of memory");
        return CLI_EXIT_FAIL;
    }
    for (char *c = path + 1;; c++) {
        if (*c != '/' && *c != '\0')
            continue;
        char end = *c;
        *c = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST) {
            cli_error("docs: %s: cannot create directory: %s", dir, strerror(errno));
            free(path);
            return CLI_EXIT_USAGE;
        }
        *c = end;
        if (!end)
            break;
    }
    free(path);
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        cli_error("docs: %s: not a directory", dir);
        return CLI_EXIT_USAGE;
    }
    if (access(dir, W_OK | X_OK) != 0) {
        cli_error("docs: %s: not writable: %s", dir, strerror(errno));
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

/* Closes the page being built in memory and writes it to dir/file atomically. */
static int save(FILE *f, char **buf, size_t *len, const char *dir, const char *file)
{
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    if (bad || !*buf) {
        cli_error("docs: out of memory building %s", file);
        return CLI_EXIT_FAIL;
    }
    size_t need = strlen(dir) + strlen(file) + 2;
    char *path = malloc(need);
    nnp_error err = {0};
    int rc = CLI_EXIT_OK;
    if (!path) {
        cli_error("docs: out of memory");
        rc = CLI_EXIT_FAIL;
    } else {
        snprintf(path, need, "%s/%s", dir, file);
        if (nnp_write_file_atomic(path, *buf, *len, &err) != NNP_OK)
            rc = cli_fail(&err);
    }
    free(path);
    free(*buf);
    *buf = NULL;
    return rc;
}

/* Writes one file: kind's card, the index (kind NULL) or the style sheet
 * (doc NULL). */
static int write_file(const char *dir, const json_t *doc, const json_t *kind)
{
    char *buf = NULL, file[300];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        cli_error("docs: out of memory");
        return CLI_EXIT_FAIL;
    }
    int bad = 0;
    if (!doc) {
        snprintf(file, sizeof file, "style.css");
        fputs(docs_css, f);
    } else if (!kind) {
        snprintf(file, sizeof file, "index.html");
        bad = index_page(f, doc) != 0;
    } else {
        page_name(str_of(kind, "name"), file, sizeof file);
        kind_page(f, kind, doc);
    }
    if (bad) {
        fclose(f);
        free(buf);
        cli_error("docs: out of memory building %s", file);
        return CLI_EXIT_FAIL;
    }
    return save(f, &buf, &len, dir, file);
}

int cmd_docs(int argc, char **argv)
{
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(docs_usage, stdout);
            return CLI_EXIT_OK;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            cli_error("docs: unknown option '%s' (usage: nnplug docs DIR)", argv[i]);
            return CLI_EXIT_USAGE;
        } else if (dir) {
            cli_error("docs: unexpected argument '%s' (usage: nnplug docs DIR)", argv[i]);
            return CLI_EXIT_USAGE;
        }
        dir = argv[i];
    }
    if (!dir || !*dir) {
        cli_error("docs: needs DIR, the folder to write the site into (usage: nnplug docs DIR)");
        return CLI_EXIT_USAGE;
    }
    int rc = make_dir(dir);
    if (rc != CLI_EXIT_OK)
        return rc;
    json_t *doc;
    rc = cli_plugins_schema(&doc);
    if (rc != CLI_EXIT_OK)
        return rc;
    rc = write_file(dir, NULL, NULL);
    size_t i;
    json_t *kind;
    json_array_foreach(doc, i, kind) {
        if (rc == CLI_EXIT_OK)
            rc = write_file(dir, doc, kind);
    }
    if (rc == CLI_EXIT_OK)
        rc = write_file(dir, doc, NULL);
    json_decref(doc);
    return rc;
}
