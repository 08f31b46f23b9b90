// ONNX protobuf reader on protozero (header-only, zero-copy). Field numbers
// are those of onnx/onnx.proto3; unknown fields are skipped so newer writers
// still load, wrong wire types and truncation are errors.
#include <cstring>
#include <type_traits>
#include <protozero/exception.hpp>
#include <protozero/pbf_reader.hpp>

#include "core/mapped_file.h"
#include "core/model.h"

namespace sde {
namespace {

using protozero::pbf_reader;

[[noreturn]] void bad(const std::string& what) {
  fail(StatusCode::kInvalidModel, "malformed ONNX model: ", what);
}

struct ReaderContext {
  std::string base_dir;          // empty when loaded from bytes
  bool from_bytes = false;
  std::shared_ptr<void> mapped;  // keeps `data` of the model alive when mapped
  std::map<std::string, MappedFile> external_files;
};

// protozero only asserts wire types in debug builds; a model whose fields
// have the wrong wire type must be an error, not a misread, so check here.
void expect_wire(pbf_reader& m, protozero::pbf_wire_type want) {
  if (m.wire_type() != want) {
    bad("field " + std::to_string(m.tag()) + " has wire type " + std::to_string(int(m.wire_type())) +
        " where " + std::to_string(int(want)) + " was expected");
  }
}
std::string read_string(pbf_reader& m) {
  expect_wire(m, protozero::pbf_wire_type::length_delimited);
  return std::string(m.get_view());
}
pbf_reader sub(pbf_reader& m) {
  expect_wire(m, protozero::pbf_wire_type::length_delimited);
  return m.get_message();
}
int64_t varint(pbf_reader& m) {
  expect_wire(m, protozero::pbf_wire_type::varint);
  return m.get_int64();
}
float fixed_float(pbf_reader& m) {
  expect_wire(m, protozero::pbf_wire_type::fixed32);
  return m.get_float();
}

void read_string_entry(pbf_reader m, std::string& key, std::string& value) {
  while (m.next()) {
    switch (m.tag()) {
      case 1: key = read_string(m); break;
      case 2: value = read_string(m); break;
      default: m.skip();
    }
  }
}

// Repeated scalar fields may be packed (length-delimited) or not.
template <typename T, typename PackedGetter, typename SingleGetter>
void read_repeated(pbf_reader& m, std::vector<T>& out, PackedGetter packed, SingleGetter single) {
  if (m.wire_type() == protozero::pbf_wire_type::length_delimited) {
    auto range = (m.*packed)();
    for (auto v : range) out.push_back(static_cast<T>(v));
  } else {
    expect_wire(m, std::is_floating_point<T>::value
                       ? (sizeof(T) == 4 ? protozero::pbf_wire_type::fixed32 : protozero::pbf_wire_type::fixed64)
                       : protozero::pbf_wire_type::varint);
    out.push_back(static_cast<T>((m.*single)()));
  }
}

bool path_is_safe(const std::string& location) {
  if (location.empty() || location[0] == '/') return false;
  size_t pos = 0;
  while (pos <= location.size()) {
    size_t next = location.find('/', pos);
    if (next == std::string::npos) next = location.size();
    if (location.compare(pos, next - pos, "..") == 0 && next - pos == 2) return false;
    pos = next + 1;
  }
  return true;
}

Tensor read_tensor(pbf_reader m, ReaderContext& ctx) {
  Shape dims;
  int32_t data_type = 0;
  std::string name;
  const char* raw = nullptr;
  size_t raw_size = 0;
  bool has_raw = false;
  std::vector<float> float_data;
  std::vector<int32_t> int32_data;
  std::vector<int64_t> int64_data;
  std::vector<double> double_data;
  std::vector<uint64_t> uint64_data;
  std::map<std::string, std::string> external;
  int32_t data_location = 0;

  while (m.next()) {
    switch (m.tag()) {
      case 1: read_repeated(m, dims, &pbf_reader::get_packed_int64, &pbf_reader::get_int64); break;
      case 2: data_type = static_cast<int32_t>(varint(m)); break;
      case 4: read_repeated(m, float_data, &pbf_reader::get_packed_float, &pbf_reader::get_float); break;
      case 5: read_repeated(m, int32_data, &pbf_reader::get_packed_int32, &pbf_reader::get_int32); break;
      case 7: read_repeated(m, int64_data, &pbf_reader::get_packed_int64, &pbf_reader::get_int64); break;
      case 8: name = read_string(m); break;
      case 9: {
        auto v = (expect_wire(m, protozero::pbf_wire_type::length_delimited), m.get_view());
        raw = v.data();
        raw_size = v.size();
        has_raw = true;
        break;
      }
      case 10: read_repeated(m, double_data, &pbf_reader::get_packed_double, &pbf_reader::get_double); break;
      case 11: read_repeated(m, uint64_data, &pbf_reader::get_packed_uint64, &pbf_reader::get_uint64); break;
      case 13: {
        std::string k, v;
        read_string_entry(sub(m), k, v);
        external[k] = v;
        break;
      }
      case 14: data_location = static_cast<int32_t>(varint(m)); break;
      default: m.skip();
    }
  }
  const std::string label = name.empty() ? std::string("<unnamed>") : "'" + name + "'";
  if (!dtype_known(data_type)) {
    fail(StatusCode::kUnsupported, "tensor ", label, " has unsupported data type ", data_type);
  }
  for (int64_t d : dims) {
    if (d < 0) bad("tensor " + label + " has a negative dimension");
  }
  DType dtype = static_cast<DType>(data_type);
  const int64_t count = shape_numel(dims);
  if (count < 0 || count > (int64_t(1) << 40)) bad("tensor " + label + " has an absurd size");
  const size_t bytes = static_cast<size_t>(count) * dtype_size(dtype);

  if (data_location == 1 || !external.empty()) {
    auto loc = external.find("location");
    if (loc == external.end()) bad("external tensor " + label + " has no location");
    if (ctx.from_bytes) {
      fail(StatusCode::kInvalidArgument, "tensor ", label, " stores its data in the external file '",
           loc->second, "', which cannot be resolved for a model loaded from bytes; load it from its path");
    }
    if (!path_is_safe(loc->second)) {
      bad("external data location '" + loc->second + "' of tensor " + label + " leaves the model's folder");
    }
    int64_t offset = external.count("offset") ? std::stoll(external["offset"]) : 0;
    int64_t length = external.count("length") ? std::stoll(external["length"]) : static_cast<int64_t>(bytes);
    if (offset < 0 || length != static_cast<int64_t>(bytes)) {
      bad("external tensor " + label + " has length " + std::to_string(length) + " but its shape needs " +
          std::to_string(bytes) + " bytes");
    }
    std::string path = ctx.base_dir.empty() ? loc->second : ctx.base_dir + "/" + loc->second;
    auto it = ctx.external_files.find(path);
    if (it == ctx.external_files.end()) {
      if (!file_exists(path)) {
        fail(StatusCode::kFileNotFound, "external data file '", path, "' of tensor ", label, " not found");
      }
      it = ctx.external_files.emplace(path, map_file(path)).first;
    }
    const MappedFile& f = it->second;
    if (static_cast<uint64_t>(offset) + bytes > f.size) {
      bad("external data file '" + path + "' is too short for tensor " + label);
    }
    const uint8_t* src = f.data + offset;
    if (reinterpret_cast<uintptr_t>(src) % dtype_size(dtype) == 0) {
      // Borrow the mapping: no copy of the weights.
      return Tensor::view(dtype, dims, const_cast<uint8_t*>(src), f.keep_alive);
    }
    Tensor t = Tensor::allocate(dtype, dims);
    std::memcpy(t.data, src, bytes);
    return t;
  }

  if (has_raw) {
    if (raw_size != bytes) {
      bad("tensor " + label + " holds " + std::to_string(raw_size) + " bytes of raw data but its shape " +
          shape_str(dims) + " needs " + std::to_string(bytes));
    }
    if (ctx.mapped && reinterpret_cast<uintptr_t>(raw) % 64 == 0) {
      return Tensor::view(dtype, dims, const_cast<char*>(raw), ctx.mapped);
    }
    Tensor t = Tensor::allocate(dtype, dims);
    if (bytes) std::memcpy(t.data, raw, bytes);
    return t;
  }

  Tensor t = Tensor::allocate(dtype, dims);
  auto check_count = [&](size_t n) {
    if (n != static_cast<size_t>(count)) {
      bad("tensor " + label + " holds " + std::to_string(n) + " values but its shape " + shape_str(dims) +
          " needs " + std::to_string(count));
    }
  };
  switch (dtype) {
    case DType::kFloat32:
      check_count(float_data.size());
      if (count) std::memcpy(t.data, float_data.data(), bytes);
      break;
    case DType::kInt64:
      check_count(int64_data.size());
      if (count) std::memcpy(t.data, int64_data.data(), bytes);
      break;
    case DType::kFloat64:
      check_count(double_data.size());
      if (count) std::memcpy(t.data, double_data.data(), bytes);
      break;
    case DType::kUInt64: case DType::kUInt32:
      check_count(uint64_data.size());
      for (int64_t i = 0; i < count; ++i) {
        if (dtype == DType::kUInt64) t.as<uint64_t>()[i] = uint64_data[i];
        else t.as<uint32_t>()[i] = static_cast<uint32_t>(uint64_data[i]);
      }
      break;
    default: {
      // int32, int16, int8, uint8, uint16, bool and float16 bits live in int32_data.
      check_count(int32_data.size());
      for (int64_t i = 0; i < count; ++i) {
        int32_t v = int32_data[i];
        switch (dtype_size(dtype)) {
          case 1: static_cast<uint8_t*>(t.data)[i] = static_cast<uint8_t>(v); break;
          case 2: static_cast<uint16_t*>(t.data)[i] = static_cast<uint16_t>(v); break;
          default: static_cast<int32_t*>(t.data)[i] = v;
        }
      }
    }
  }
  return t;
}

void read_shape(pbf_reader m, ValueInfo& vi) {
  vi.has_shape = true;
  while (m.next()) {
    if (m.tag() == 1) {
      Dim d;
      pbf_reader dm = sub(m);
      while (dm.next()) {
        switch (dm.tag()) {
          case 1: d.value = varint(dm); break;
          case 2: d.param = read_string(dm); break;
          default: dm.skip();
        }
      }
      vi.dims.push_back(d);
    } else {
      m.skip();
    }
  }
}

ValueInfo read_value_info(pbf_reader m) {
  ValueInfo vi;
  while (m.next()) {
    switch (m.tag()) {
      case 1: vi.name = read_string(m); break;
      case 2: {
        pbf_reader type = sub(m);
        while (type.next()) {
          if (type.tag() == 1) {  // tensor_type
            pbf_reader tt = sub(type);
            while (tt.next()) {
              switch (tt.tag()) {
                case 1: vi.dtype = static_cast<DType>(static_cast<int32_t>(varint(tt))); break;
                case 2: read_shape(sub(tt), vi); break;
                default: tt.skip();
              }
            }
          } else {
            type.skip();
          }
        }
        break;
      }
      default: m.skip();
    }
  }
  return vi;
}

Attribute read_attribute(pbf_reader m, ReaderContext& ctx) {
  Attribute a;
  while (m.next()) {
    switch (m.tag()) {
      case 1: a.name = read_string(m); break;
      case 2: a.f = fixed_float(m); break;
      case 3: a.i = varint(m); break;
      case 4: a.s = read_string(m); break;
      case 5: a.t = read_tensor(sub(m), ctx); break;
      case 6: m.skip(); a.has_graph = true; break;
      case 7: read_repeated(m, a.floats, &pbf_reader::get_packed_float, &pbf_reader::get_float); break;
      case 8: read_repeated(m, a.ints, &pbf_reader::get_packed_int64, &pbf_reader::get_int64); break;
      case 9: a.strings.push_back(read_string(m)); break;
      case 11: m.skip(); a.has_graph = true; break;
      case 20: a.type = static_cast<Attribute::Type>(static_cast<int32_t>(varint(m))); break;
      case 21: a.ref_attr_name = read_string(m); break;
      default: m.skip();
    }
  }
  return a;
}

Node read_node(pbf_reader m, ReaderContext& ctx) {
  Node n;
  while (m.next()) {
    switch (m.tag()) {
      case 1: n.inputs.push_back(read_string(m)); break;
      case 2: n.outputs.push_back(read_string(m)); break;
      case 3: n.name = read_string(m); break;
      case 4: n.op_type = read_string(m); break;
      case 5: n.attributes.push_back(read_attribute(sub(m), ctx)); break;
      case 7: n.domain = read_string(m); break;
      default: m.skip();
    }
  }
  if (n.domain == "ai.onnx") n.domain.clear();
  if (n.op_type.empty()) bad("a node has no op_type");
  return n;
}

Graph read_graph(pbf_reader m, ReaderContext& ctx) {
  Graph g;
  while (m.next()) {
    switch (m.tag()) {
      case 1: g.nodes.push_back(read_node(sub(m), ctx)); break;
      case 2: g.name = read_string(m); break;
      case 5: {
        pbf_reader tm = sub(m);
        // The name is needed before the data is interpreted; read_tensor
        // parses it too, so find it with a cheap first pass.
        std::string name;
        pbf_reader probe = tm;
        while (probe.next()) {
          if (probe.tag() == 8) name = read_string(probe);
          else probe.skip();
        }
        if (name.empty()) bad("an initializer has no name");
        if (g.initializers.count(name)) bad("initializer '" + name + "' is defined twice");
        g.initializers[name] = read_tensor(tm, ctx);
        g.initializer_order.push_back(name);
        break;
      }
      case 15: fail(StatusCode::kUnsupported, "sparse_initializer is not supported; store dense initializers");
      case 11: g.inputs.push_back(read_value_info(sub(m))); break;
      case 12: g.outputs.push_back(read_value_info(sub(m))); break;
      case 13: g.value_info.push_back(read_value_info(sub(m))); break;
      default: m.skip();
    }
  }
  return g;
}

void read_opset(pbf_reader m, std::map<std::string, int64_t>& opsets) {
  std::string domain;
  int64_t version = 0;
  while (m.next()) {
    switch (m.tag()) {
      case 1: domain = read_string(m); break;
      case 2: version = varint(m); break;
      default: m.skip();
    }
  }
  if (domain == "ai.onnx") domain.clear();
  opsets[domain] = version;
}

Function read_function(pbf_reader m, ReaderContext& ctx) {
  Function f;
  while (m.next()) {
    switch (m.tag()) {
      case 1: f.name = read_string(m); break;
      case 4: f.inputs.push_back(read_string(m)); break;
      case 5: f.outputs.push_back(read_string(m)); break;
      case 6: f.attribute_names.push_back(read_string(m)); break;
      case 7: f.nodes.push_back(read_node(sub(m), ctx)); break;
      case 9: read_opset(sub(m), f.opsets); break;
      case 10: f.domain = read_string(m); break;
      case 11: f.attribute_defaults.push_back(read_attribute(sub(m), ctx)); break;
      default: m.skip();
    }
  }
  return f;
}

}  // namespace

Model parse_model(const uint8_t* data, size_t size, const std::string& base_dir,
                  std::shared_ptr<void> mapped) {
  if (size == 0) bad("the model is empty (0 bytes)");
  ReaderContext ctx;
  ctx.base_dir = base_dir;
  ctx.from_bytes = base_dir.empty() && !mapped;
  ctx.mapped = std::move(mapped);
  Model model;
  bool has_graph = false;
  try {
    // A serialized TensorProto, GraphProto or NodeProto is valid protobuf
    // too; tell those apart by the wire types of ModelProto's own fields.
    pbf_reader probe(reinterpret_cast<const char*>(data), size);
    while (probe.next()) {
      const uint32_t tag = probe.tag();
      const bool is_varint = tag == 1 || tag == 5;
      const bool is_known = is_varint || (tag >= 2 && tag <= 8) || tag == 14 || tag == 20 || tag == 25;
      const auto want = is_varint ? protozero::pbf_wire_type::varint : protozero::pbf_wire_type::length_delimited;
      if (is_known && probe.wire_type() != want) {
        bad("the data is not an ONNX ModelProto (field " + std::to_string(tag) + " has wire type " +
            std::to_string(int(probe.wire_type())) + "; is it a TensorProto, GraphProto or NodeProto?)");
      }
      probe.skip();
    }
    pbf_reader m(reinterpret_cast<const char*>(data), size);
    while (m.next()) {
      switch (m.tag()) {
        case 1: model.ir_version = varint(m); break;
        case 2: model.producer_name = read_string(m); break;
        case 3: model.producer_version = read_string(m); break;
        case 7: model.graph = read_graph(sub(m), ctx); has_graph = true; break;
        case 8: read_opset(sub(m), model.opsets); break;
        case 14: {
          std::string k, v;
          read_string_entry(sub(m), k, v);
          model.metadata[k] = v;
          break;
        }
        case 25: model.functions.push_back(read_function(sub(m), ctx)); break;
        default: m.skip();
      }
    }
  } catch (const protozero::exception& e) {
    bad(std::string("the protobuf data is corrupt or truncated (") + e.what() + ")");
  } catch (const std::invalid_argument&) {
    bad("an external-data offset or length is not a number");
  } catch (const std::out_of_range&) {
    bad("an external-data offset or length is out of range");
  }
  if (!has_graph) bad("no graph found; the data is not an ONNX ModelProto");
  if (model.ir_version <= 0 || model.ir_version > 100) {
    bad("ir_version " + std::to_string(model.ir_version) + " is not a valid ONNX IR version");
  }
  if (model.opsets.empty()) bad("the model imports no operator set");
  return model;
}

Model load_model_file(const std::string& path) {
  MappedFile f = map_file(path);
  std::string dir = ".";
  size_t slash = path.find_last_of('/');
  if (slash != std::string::npos) dir = slash == 0 ? "/" : path.substr(0, slash);
  std::shared_ptr<void> keep = f.keep_alive ? f.keep_alive : std::make_shared<int>(0);
  try {
    return parse_model(f.data, f.size, dir, keep);
  } catch (const Error& e) {
    throw Error(e.code(), std::string(e.what()) + " (file '" + path + "')");
  }
}

Model load_model_bytes(const uint8_t* data, size_t size) {
  return parse_model(data, size, "", nullptr);
}

}  // namespace sde
