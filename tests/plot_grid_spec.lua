-- mf.plot.grid with one row per class: the labels' margin, the title strip,
-- each cell's pixels at its computed place, and the glyphs of the labels.
local mf = require "moonflow"
local H = require "helpers"
local Font = require "moonflow.plot.font"

local dir = H.tmpdir()

local function reader(path)
  local w, h, c, bytes = mf.core.read_png(path)
  return function(x, y)
    local i = (y * w + x) * c
    return bytes:byte(i + 1)
  end, w, h, c
end

-- the byte a value v in [-1, 1] maps to: round(255 (v + 1) / 2)
local function byte_of(v) return math.floor(255 * (v + 1) / 2 + 0.5) end

describe("plot.grid with row labels", function()
  teardown(function() os.execute(("rm -rf %q"):format(dir)) end)

  -- 6 images {6, 1, 3, 3} in 3 rows of 2; image n (0-based) holds the value
  -- -1 + n / 3 everywhere except its top-left pixel, which is 1
  local N, S = 6, 3
  local vals = {}
  for n = 0, N - 1 do
    for k = 0, S * S - 1 do vals[#vals + 1] = k == 0 and 1 or -1 + n / 3 end
  end
  local images = mf.tensor(vals):reshape({ N, 1, S, S })
  local labels = { "T-shirt/top", "Bag", "Ankle boot" }

  it("places the cells right of a margin as wide as the longest label", function()
    local path = dir .. "/rows.png"
    local p, lay = mf.plot.grid(path, images, { nrow = 2, row_labels = labels, scale = 4, pad = 2, title = "step 5" })
    assert.are.equal(path, p)
    -- "Ankle boot" and "T-shirt/top": 11 characters of 8 pixels, less the last gap: 86; margin 86 + 16
    local left, top, cell = 11 * 8 - 2 + 16, 24, S * 4
    assert.are.same({ left, top, cell, cell, 2, 3 }, { lay.left, lay.top, lay.cell_w, lay.cell_h, lay.nrow == 2 and 2, lay.rows })
    local px, w, h, c = reader(path)
    assert.are.equal(left + 2 * cell + 3 * 2, w)
    assert.are.equal(top + 3 * cell + 4 * 2, h)
    assert.are.equal(1, c) -- gray images stay gray
    for n = 0, N - 1 do
      local r, col = n // 2, n % 2
      local x0, y0 = left + 2 + col * (cell + 2), top + 2 + r * (cell + 2)
      -- the top-left source pixel covers a 4 x 4 block; the rest holds the image's value
      assert.are.equal(255, px(x0, y0))
      assert.are.equal(255, px(x0 + 3, y0 + 3))
      assert.are.equal(byte_of(-1 + n / 3), px(x0 + 4, y0), "image " .. n)
      assert.are.equal(byte_of(-1 + n / 3), px(x0 + cell - 1, y0 + cell - 1), "image " .. n)
      assert.are.equal(40, px(x0 - 1, y0)) -- the padding between cells
    end
    -- the margin is white where no glyph is drawn
    assert.are.equal(255, px(left - 2, top + 2))
    assert.are.equal(255, px(0, h - 1))
  end)

  it("writes each row's label beside its row, vertically centred", function()
    local path = dir .. "/glyphs.png"
    local _, lay = mf.plot.grid(path, images, { nrow = 2, row_labels = labels, scale = 4, pad = 2 })
    local px = reader(path)
    assert.are.equal(0, lay.top) -- no title, no strip
    for r = 0, 2 do
      -- text scale 2 (3x5 glyphs of 2x2 pixels) at x = 8, y = top of the row + (cell - 10) / 2
      local y0 = lay.top + 2 + r * (lay.cell_h + 2) + (lay.cell_h - 10) // 2
      local s = labels[r + 1]
      for i = 1, #s do
        local ch = s:sub(i, i)
        for row = 0, 4 do
          for col = 0, 2 do
            local x, y = 8 + (i - 1) * 8 + col * 2, y0 + row * 2
            local want = Font.on(ch, col, row) and 20 or 255
            assert.are.equal(want, px(x, y), ("row %d label %q char %d (%s) glyph pixel %d,%d"):format(r, s, i, ch, col, row))
            assert.are.equal(want, px(x + 1, y + 1))
          end
        end
      end
    end
  end)

  it("refuses fewer labels than rows, naming both counts", function()
    local ok, err = pcall(mf.plot.grid, dir .. "/bad.png", images, { nrow = 2, row_labels = { "a", "b" } })
    assert.is_false(ok)
    assert.truthy(tostring(err):find("moonflow.plot.grid: row_labels has 2 entries for 3 rows", 1, true), err)
  end)

  it("curves draws panels side by side", function()
    local path = dir .. "/curves.png"
    local _, lays = mf.plot.curves(path, { { { 3, 2, 1 }, { title = "a" } }, { { { 10, 1 }, { 20, 4 } }, { title = "b" } } },
      { width = 300, height = 200 })
    local w, h = mf.core.read_png(path)
    assert.are.same({ 600, 200 }, { w, h })
    assert.are.same({ 72, 30, 280, 152 }, lays[1].rect)
    assert.are.same({ 372, 30, 580, 152 }, lays[2].rect)
    assert.are.same({ 10, 20 }, lays[2].xrange)
  end)
end)
