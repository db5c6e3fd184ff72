// The dashboard's static files (src/api/ui/: index.html, app.js, app.css),
// compiled into the binary: cmake/embed_ui.cmake turns each file into a byte
// array of a generated .cc at build time, so nothing is read from disk or
// fetched at run time. Immutable data; any thread.
#pragma once

#include <cstddef>
#include <string_view>

namespace tandem::api {

struct UiAsset {
  const char* name;          // "index.html", "app.js", "app.css"
  const char* content_type;  // "text/html; charset=utf-8", ...
  std::string_view body;
};

// The asset called `name` (exactly; no path, no "..", no case folding), or
// nullptr.
const UiAsset* FindUiAsset(std::string_view name);

// The generated table (build/generated/ui_assets_data.cc).
extern const UiAsset kUiAssets[];
extern const size_t kUiAssetCount;

}  // namespace tandem::api
