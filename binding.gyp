{
  "targets": [
    {
      "target_name": "korutin",
      "sources": [
        "<!@(node engine/node/configure.js sources <(target_arch))",
        "engine/node/binding.cc",
        "engine/node/sched_binding.cc",
        "engine/node/v8bridge/async_stack.cc",
        "engine/node/v8bridge/bridge.cc",
        "engine/node/v8bridge/discover.cc",
        "engine/node/v8bridge/join_stack.cc",
        "engine/node/v8bridge/profiler.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "engine/include",
        "engine/src"
      ],
      "defines": [
        "<!@(node engine/node/configure.js defines <(target_arch))",
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_CPP_EXCEPTIONS",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "libraries": ["<!@(node engine/node/configure.js libraries <(target_arch))", "-ldl", "-lpthread"],
      "cflags": ["-fvisibility=hidden", "<!@(node engine/node/configure.js lto <(target_arch))"],
      "cflags_cc": ["-fvisibility=hidden", "<!@(node engine/node/configure.js lto <(target_arch))"],
      "conditions": [["OS=='linux'", {"ldflags": ["-Wl,--exclude-libs,ALL", "<!@(node engine/node/configure.js lto <(target_arch))"]}]]
    },
    {
      "target_name": "korutin-selfcheck",
      "type": "executable",
      "sources": ["<!@(node engine/node/configure.js selfcheck <(target_arch))"],
      "include_dirs": ["engine/include", "engine/src"],
      "defines": ["<!@(node engine/node/configure.js defines <(target_arch))"],
      "libraries": ["<!@(node engine/node/configure.js libraries <(target_arch))", "-lm", "-lpthread"]
    },
    {
      "target_name": "korutin-bench",
      "type": "executable",
      "sources": ["<!@(node engine/node/configure.js bench <(target_arch))"],
      "include_dirs": ["engine/include", "engine/src"],
      "defines": ["<!@(node engine/node/configure.js defines <(target_arch))", "<!@(node engine/node/configure.js benchDefines <(target_arch))"],
      "libraries": ["<!@(node engine/node/configure.js libraries <(target_arch))", "-lm", "-lpthread"]
    }
  ]
}
