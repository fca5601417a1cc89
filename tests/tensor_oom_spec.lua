-- Out of memory: the pool refuses, with an error naming the request and its
-- use, any allocation that would take it past its limit (the device's global
-- memory unless lowered by mf.set_memory_limit or MOONFLOW_MEMORY_LIMIT),
-- after giving its cached buffers back once.
local mf = require "moonflow"
local H = require "helpers"

local KiB, MiB = 1024, 1024 * 1024

local function sh_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function with_limit(bytes, fn)
  local old = mf.set_memory_limit(bytes)
  local ok, err = pcall(fn)
  mf.set_memory_limit(old)
  if not ok then error(err, 0) end
end

describe("out of memory", function()
  it("the default limit is the device's global memory", function()
    assert.equal(mf.device().global_memory, mf.memory().limit)
  end)

  it("a request past the limit is an error naming bytes, use and limit; nothing leaks", function()
    collectgarbage()
    mf.core.trim()
    local before = mf.memory()
    with_limit(before.in_use + MiB, function()
      assert.equal(before.in_use + MiB, mf.memory().limit)
      -- 2 MiB of f32 is one 2 MiB bucket: in_use + 2 MiB > limit
      H.errors(function() return mf.zeros({ 512 * KiB }) end, "moonflow.zeros", "out of memory", "2097152 bytes",
        ("%d bytes in use"):format(before.in_use), ("limit %d"):format(before.in_use + MiB))
      assert.equal(before.in_use, mf.memory().in_use)
      -- below the limit still works, with exact values
      local x = mf.full({ 1000 }, 3)
      assert.equal(3000, x:sum():item())
    end)
  end)

  it("cached buffers are released once and the request retried before failing", function()
    collectgarbage()
    mf.core.trim()
    local base = mf.memory().in_use
    with_limit(base + MiB, function()
      local a = mf.zeros({ 128 * KiB }) -- 512 KiB
      a = nil
      collectgarbage()
      assert.equal(512 * KiB, mf.memory().cached)
      -- 768 KiB is another bucket: 512 KiB cached + 768 KiB > 1 MiB, fits once the cache is gone
      local b = mf.full({ 192 * KiB }, 2)
      assert.equal(0, mf.memory().cached)
      assert.equal(base + 768 * KiB, mf.memory().in_use)
      assert.equal(2 * 192 * KiB, b:sum():item())
    end)
  end)

  it("a limit above the device's global memory or below zero is refused", function()
    H.errors(function() mf.set_memory_limit(mf.device().global_memory + 1) end, "moonflow.set_memory_limit",
      tostring(mf.device().global_memory))
    H.errors(function() mf.set_memory_limit(-1) end, "moonflow.set_memory_limit", "-1")
  end)

  it("MOONFLOW_MEMORY_LIMIT sets the limit (K/M/G suffixes) and a bad value is a clear error", function()
    local code = ([[
      package.path = %q; package.cpath = %q
      local mf = require 'moonflow'
      print('limit', mf.memory().limit)
      print(select(2, pcall(mf.zeros, { 1024 * 1024 })))
      print('small', mf.ones({ 1024 }):sum():item())
    ]]):format(package.path, package.cpath)
    local p = io.popen("MOONFLOW_MEMORY_LIMIT=3M lua5.4 -e " .. sh_quote(code) .. " 2>&1")
    local out = p:read("a")
    assert.is_true(p:close(), out)
    assert.truthy(out:find("limit\t3145728", 1, true), out)
    assert.truthy(out:find("moonflow.zeros: device out of memory", 1, true), out)
    assert.truthy(out:find("4194304 bytes", 1, true), out)
    assert.truthy(out:find("small\t1024", 1, true), out)
    p = io.popen("MOONFLOW_MEMORY_LIMIT=lots lua5.4 -e " .. sh_quote(code) .. " 2>&1")
    out = p:read("a")
    p:close()
    assert.truthy(out:find("MOONFLOW_MEMORY_LIMIT", 1, true), out)
    assert.truthy(out:find("lots", 1, true), out)
  end)
end)
