document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var dir = th.dataset.dir === 'asc' ? -1 : 1; th.dataset.dir = dir === 1 ? 'asc' : 'desc';
      var key = function (r) { var c = r.cells[col]; return c ? (c.dataset.sort || c.textContent) : ''; };
      rows.sort(function (a, b) {
        var x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
        if (!isNaN(nx) && !isNaN(ny)) return dir * (nx - ny);
        return dir * x.localeCompare(y);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
document.querySelectorAll('button.play-all').forEach(function (b) {
  b.addEventListener('click', function () {
    var vids = b.closest('.run').querySelectorAll('video'), play = b.textContent.indexOf('play') === 0;
    vids.forEach(function (v) { if (play) { v.currentTime = 0; v.play().catch(function () {}); } else v.pause(); });
    b.textContent = play ? 'pause all videos' : 'play all videos';
  });
});
document.body.dataset.ready = '1';
