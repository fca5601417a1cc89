-- The caching allocator and the collector keep a loop's device memory flat;
-- mf.stats counts exactly what the core enqueues.
local mf = require "moonflow"

local function settle()
  mf.synchronize()
  collectgarbage()
  collectgarbage()
end

describe("memory", function()
  it("a 10,000-iteration loop of temporaries holds flat memory and makes no new buffers", function()
    local x = mf.randn({ 256 })
    local w = mf.randn({ 64, 256 })
    local warm, hi_warm, hi_late
    for i = 1, 10000 do
      -- several temporaries of a few sizes per iteration, none kept
      local y = (x * 2 + 1):exp():sum()
      local z = mf.matmul(w, x:reshape { 256, 1 }):tanh()
      local s = (z - y):square():mean()
      if i == 2000 then
        warm = mf.memory()
        hi_warm = warm.in_use
        mf.reset_stats()
      elseif i > 2000 then
        local m = mf.memory()
        hi_late = math.max(hi_late or 0, m.in_use)
        assert(m.buffers == warm.buffers, "buffers grew after warm-up: " .. m.buffers .. " vs " .. warm.buffers)
      elseif i > 1000 then
        hi_warm = math.max(hi_warm or 0, mf.memory().in_use)
      end
    end
    local st = mf.stats()
    assert.equal(0, st.allocs, "clCreateBuffer calls after warm-up")
    assert.is_true(st.reuses > 10000 * 5)
    -- in_use goes up and down with the collector's cycle but never past the
    -- high-water mark of the warm-up window (plus one cycle's worth of slack)
    assert.is_true(hi_late <= 2 * hi_warm, ("in_use %d after warm-up, %d before"):format(hi_late, hi_warm))
  end)

  it("large temporaries are reclaimed at the pace they are made", function()
    settle()
    mf.reset_peak()
    local base = mf.memory().in_use
    local big = mf.zeros({ 1 << 20 }) -- 4 MiB
    for _ = 1, 200 do
      local y = big + 1 -- 800 MiB in total if nothing were freed
    end
    local m = mf.memory()
    assert.is_true(m.peak - base < 16 * 4 * 2 ^ 20, ("peak %d MiB above the start"):format((m.peak - base) >> 20))
  end)

  it("sizes round up to buckets and freed buffers are reused", function()
    settle()
    local m0 = mf.memory()
    local t = mf.empty({ 1250 }) -- 5000 bytes: bucket 4096 + 1024
    local m1 = mf.memory()
    assert.equal(5120, m1.in_use - m0.in_use)
    t = nil
    settle()
    local m2 = mf.memory()
    assert.equal(m0.in_use, m2.in_use)
    assert.is_true(m2.cached >= 5120)
    mf.reset_stats()
    local u = mf.empty({ 1100 }) -- 4400 bytes: the same bucket
    local st = mf.stats()
    assert.equal(0, st.allocs)
    assert.equal(1, st.reuses)
    assert.equal(m1.in_use, mf.memory().in_use)
    -- small tensors take the 256-byte minimum
    local m3 = mf.memory().in_use
    local s = mf.empty({ 3 })
    assert.equal(256, mf.memory().in_use - m3)
    assert.truthy(u and s)
  end)

  it("views share the storage: no new memory", function()
    settle()
    local x = mf.zeros({ 64, 64 })
    local m0 = mf.memory().in_use
    mf.reset_stats()
    local v = x:t():narrow(1, 2, 10):expand { 3, 10, 64 }
    local r = x:reshape { 4096 }
    assert.equal(m0, mf.memory().in_use)
    assert.equal(0, mf.stats().allocs + mf.stats().reuses)
    assert.truthy(v and r)
  end)
end)

describe("stats", function()
  it("count launches, reads, writes and bytes exactly", function()
    local m = mf.tensor({ { 1, 2 }, { 3, 4 } })
    settle()
    mf.reset_stats()
    local s0 = mf.stats()
    for _, k in ipairs { "launches", "reads", "read_bytes", "writes", "write_bytes", "allocs", "reuses" } do
      assert.equal(0, s0[k], k)
    end
    local a = mf.tensor({ 1, 2, 3, 4 }) -- one write of 16 bytes
    local b = a + 1 -- one launch
    local c = (a * b):sum() -- two launches: the product and a one-pass sum
    local v = c:item() -- one read of 4 bytes
    local t = m:t():totable() -- a packing copy (one launch) and a read of 16 bytes
    local z = mf.zeros({ 3 }, { dtype = "f64" }) -- one fill launch
    local r = mf.Generator(0):uniform({ 8 }) -- one launch
    local p = mf.matmul(m, m) -- one gemm, counted once
    local bytes = mf.tensor({ 1, 2 }, "i32"):tobytes() -- a write of 8, a read of 8
    local st = mf.stats()
    assert.equal(7, st.launches)
    assert.equal(2, st.writes)
    assert.equal(16 + 8, st.write_bytes)
    assert.equal(3, st.reads)
    assert.equal(4 + 16 + 8, st.read_bytes)
    -- a, b, a*b, c, the packed copy, z, r, p, the i32 tensor
    assert.equal(9, st.allocs + st.reuses)
    assert.equal(1 * 2 + 2 * 3 + 3 * 4 + 4 * 5, v)
    assert.same({ { 1, 3 }, { 2, 4 } }, t)
    assert.equal(8, #bytes)
    assert.truthy(z and r and p)
    mf.reset_stats()
    assert.equal(0, mf.stats().launches)
  end)

  it("asynchronous ops do not read back", function()
    local x = mf.randn({ 1000 })
    settle()
    mf.reset_stats()
    local y = x
    for _ = 1, 50 do y = (y * 0.5 + x):tanh() end
    local st = mf.stats()
    assert.equal(0, st.reads)
    assert.equal(0, st.writes)
    assert.equal(150, st.launches)
  end)
end)
