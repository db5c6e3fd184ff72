// The event-stream walk behind CheckYamlLimits. yaml-cpp reports through
// exceptions; they are caught here and turned into Status.
#include "agent/yaml_limits.h"

#include <sys/stat.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <sstream>

#include "base/file.h"

namespace tandem::agent {
namespace {

Error Bad(const std::string& file, const std::string& msg) {
  return Error(ErrorCode::kInvalidArgument, file + ": " + msg);
}

std::string Line(const YAML::Mark& m) {
  return "line " + std::to_string(m.line + 1);
}

// Thrown by the handler to stop the walk at the first problem (the parser
// offers no other way to stop); caught in CheckYamlLimits.
struct Stop {
  std::string message;
};

class LimitHandler : public YAML::EventHandler {
 public:
  explicit LimitHandler(int max_depth) : max_depth_(max_depth) {}

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1) {
      throw Stop{Line(mark) + ": a second YAML document ('---'); the file must hold one document"};
    }
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override { Anchored(mark, anchor); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    throw Stop{Line(mark) +
               ": YAML aliases (*name) are not accepted in a config; write the value out "
               "in full where it is used"};
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    Anchored(mark, anchor);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnSequenceEnd() override { --depth_; }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnMapEnd() override { --depth_; }
  void OnAnchor(const YAML::Mark& mark, const std::string& name) override {
    throw Stop{Line(mark) + ": YAML anchors (&" + name + ") and aliases (*" + name +
               ") are not accepted in a config; write the value out in full where it is used"};
  }

 private:
  void Anchored(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor) {
      throw Stop{Line(mark) +
                 ": YAML anchors (&name) and aliases (*name) are not accepted in a config; "
                 "write the value out in full where it is used"};
    }
  }
  void Open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    Anchored(mark, anchor);
    if (++depth_ > max_depth_) {
      throw Stop{Line(mark) + ": nested deeper than the depth limit of " +
                 std::to_string(max_depth_) +
                 " levels; a config needs at most 3 (section, key, value)"};
    }
  }

  const int max_depth_;
  int depth_ = 0;
  int documents_ = 0;
};

}  // namespace

Status CheckYamlLimits(const std::string& text, const std::string& file, const YamlLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Bad(file, "the file is " + std::to_string(text.size()) + " bytes, over the limit of " +
                         std::to_string(limits.max_bytes) +
                         " bytes for a config; is this the right file?");
  }
  if (text.find('\0') != std::string::npos) {
    return Bad(file, "the file contains a NUL byte; a config is text (is this the right file?)");
  }
  std::istringstream in(text);
  try {
    YAML::Parser parser(in);
    LimitHandler handler(limits.max_depth);
    while (parser.HandleNextDocument(handler)) {
    }
  } catch (const Stop& s) {
    return Bad(file, s.message);
  } catch (const YAML::Exception& e) {
    return Bad(file, "not valid YAML: " + std::string(e.what()));
  }
  return Ok();
}

Result<std::string> ReadYamlFile(const std::string& path, const YamlLimits& limits) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      return Bad(path, "is not a regular file; pass the node's YAML config file");
    }
    if (static_cast<uint64_t>(st.st_size) > limits.max_bytes) {
      return Bad(path, "the file is " + std::to_string(st.st_size) + " bytes, over the limit of " +
                           std::to_string(limits.max_bytes) +
                           " bytes for a config; is this the right file?");
    }
  }
  return ReadFile(path);
}

Result<YAML::Node> LoadYamlWithLimits(const std::string& text, const std::string& file,
                                      const YamlLimits& limits) {
  TANDEM_TRY(CheckYamlLimits(text, file, limits));
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Bad(file, "not valid YAML: " + std::string(e.what()));
  }
}

}  // namespace tandem::agent
