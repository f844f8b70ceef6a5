"""Sphinx configuration of the course's book (`make book`, driven by common/course/book/).

Sphinx with MyST-NB renders the notebooks staged in build/book-src/<lang>/ with their stored
outputs: nothing is executed. The driver sets, per edition, `language` (en or zh_CN: the theme's
strings and the search index's word splitting), `book_edition` and `book_editions` (for the
language switch on every page) and `book_extra_static` (the MathJax files served with the site).
"""
import os

project = "Image segmentation, hands-on, on PaddlePaddle"
author = "the course's authors"
copyright = "the course's authors"

extensions = ["myst_nb", "sphinx.ext.mathjax"]
nb_execution_mode = "off"             # the committed outputs are the book's outputs
nb_ipywidgets_js = {}                 # widgets are staged as their saved pictures: no widget JS from a CDN
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_dmath_double_inline = True
# Pandoc's rule: `$x$` is math, `$ x $` and `5$` are not, so a stray dollar stays visible and the
# site check (common.course.book.check_site) fails on it instead of rendering prose as a formula.
myst_dmath_allow_space = False
myst_dmath_allow_digits = False

templates_path = ["_templates"]
html_static_path = ["_static"]        # + book_extra_static (MathJax), added below
html_css_files = ["book.css"]
mathjax_path = "mathjax/tex-chtml.js"  # served from the site itself: the book works offline
html_theme = "sphinx_book_theme"
html_title = "Image segmentation, hands-on"
html_copy_source = True               # the download button hands out the page's notebook
html_show_sourcelink = False
html_last_updated_fmt = None
html_favicon = "_static/favicon.svg"
html_context = {"default_mode": "light"}   # figures are drawn on white; the header button switches to dark
html_theme_options = {
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "use_download_button": True,
    "use_fullscreen_button": True,
    "article_header_end": ["lang-switch.html", "article-header-buttons.html"],
    "footer_content_items": [],
    "navigation_with_keys": False,
    "navbar_persistent": [],          # search sits in the sidebar and the article header
}
exclude_patterns = ["**.ipynb_checkpoints"]

# Filled per edition by the driver (`-D book_edition=zh -D book_editions=en:English,zh:中文`).
book_edition = "en"
book_editions = ["en:English"]
book_extra_static = ""


def _edition_settings(app, config):
    if config.book_extra_static:
        config.html_static_path = list(config.html_static_path) + [config.book_extra_static]
    if config.book_edition == "zh":
        config.html_title = "图像分割实战"
        # jieba (the Chinese word splitter of the search index) keeps its cache in the build folder.
        try:
            import jieba
        except ImportError:
            pass
        else:
            os.makedirs(app.doctreedir, exist_ok=True)       # Sphinx makes it after jieba writes its cache
            jieba.dt.tmp_dir = str(app.doctreedir)
            # the course's terms are words of their own (jieba alone cuts 感受野 into 感受 + 野,
            # and a search for 感受野 would then find nothing)
            from common.course.i18n import load_glossary

            for entry in load_glossary():
                jieba.add_word(entry["zh"])


def _language_switch(app, pagename, templatename, context, doctree):
    """The same page in the other edition(s): ../<lang>/<page>.html, relative, so the site works
    from any folder of any host."""
    up = "../" * (pagename.count("/") + 1)
    others = []
    for item in app.config.book_editions:
        lang, _, label = item.partition(":")
        if lang != app.config.book_edition:
            others.append({"lang": lang, "label": label, "url": f"{up}{lang}/{pagename}.html"})
    context["book_other_editions"] = others


def _chinese_search():
    """Sphinx's Chinese search splits words with jieba and stems Latin words with the English
    stemmer, yet names the JavaScript stemmer after the language (`window.Stemmer =
    ChineseStemmer`), which no script defines: the search page stops with a ReferenceError.
    The same search under the stemmer's real name."""
    from sphinx.search.zh import SearchChinese

    class ChineseSearch(SearchChinese):
        language_name = "English"        # only names the JS stemmer (EnglishStemmer) and a log line

    return ChineseSearch


def setup(app):
    app.add_search_language(_chinese_search())
    app.add_config_value("book_edition", "en", "html")
    app.add_config_value("book_editions", ["en:English"], "html")
    app.add_config_value("book_extra_static", "", "html")
    app.connect("config-inited", _edition_settings)
    app.connect("html-page-context", _language_switch)
